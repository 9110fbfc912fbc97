//! A seeded, deterministic chain generator on the devnet genesis, with optional adversarial
//! injections (pswv.md "Adversarial features").
//!
//! The generator never asks the validator what is valid: fees, statuses and the coinbase amount
//! come from its own bookkeeping, and each block reports what was injected. The blocks always
//! form **one linked header chain** (each block's previous hash is the block before it, bad or
//! not), so an invalid block is only discovered by validation; blocks after it are built on the
//! wallet's *intended* state and are never reached by a correct validator.
//!
//! Proof of work is not mined: every nonce is 0. Validate with
//! [`SkipPow`](crate::validation::SkipPow), or with [`FlaggedPow`] to see
//! [`Injection::BadPow`].

use std::collections::HashSet;

use crate::block::{Block, BlockHeader};
use crate::consensus::{block_subsidy, Network};
use crate::genesis::genesis_block;
use crate::hash::{AssetId, Hash, BTM_ASSET_ID};
use crate::merkle::{tx_merkle_root, tx_status_merkle_root};
use crate::tx::{CoinbaseInput, Transaction, TxData, TxInput, TxOutput};
use crate::validation::{BlockError, BlockResult, PowCheck};

use super::headers::HeaderChain;
use super::wallet::{Pool, Utxo, Wallet, Witness, MIN_FUNDING, WALLET_KEYS, WALLET_MULTISIGS};
use super::XorShift;

/// One adversarial feature. [`Injection::invalidates_block`] says which ones make the block
/// invalid under the sequential rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Injection {
    /// Valid: a tx with a signed BTM spend (paying the fee) and a non-BTM spend with a bad
    /// signature: gas becomes valid, then the VM fails → status fail; only BTM moves.
    StatusFail,
    /// Valid: a tx retiring BTM (an output whose program starts with `OP_FAIL`).
    Retirement,
    /// Valid: a coinbase-only block whose coinbase is identical to every other such block's
    /// (fixed arbitrary data, amount = subsidy, key 0): it re-creates the same output ID.
    DuplicateCoinbase,
    /// Valid: spends the coinbase output of block h − 100 (exactly mature).
    CoinbaseSpendAtMaturity,
    /// Invalid (`UtxoError::CoinbaseNotMature`): spends the coinbase output of block h − 99.
    CoinbaseSpendBeforeMaturity,
    /// Invalid (`UtxoError::AlreadySpent`): two txs of the block spend the same output.
    DoubleSpendInBlock,
    /// Invalid: re-spends an output spent in an earlier block (`UtxoError::NotFound` for a
    /// non-coinbase output, deleted from storage once spent; `AlreadySpent` for a coinbase).
    DoubleSpendAcrossBlocks,
    /// Invalid (`UtxoError::NotFound`): spends an output of a tx that only appears in the
    /// next block.
    SpendBeforeCreation,
    /// Invalid (`BlockError::Tx` with a VM false result): a BTM spend with a bad signature.
    BadBtmSignature,
    /// Invalid (`BlockError::MismatchedTxRoot`): one byte of the tx merkle root flipped.
    BadMerkleRoot,
    /// Invalid (`BlockError::CoinbaseAmount`): the coinbase pays one neu too much.
    BadCoinbaseAmount,
    /// Invalid only under [`FlaggedPow`] (`BlockError::WorkProof`): the block is flagged as
    /// failing its proof of work.
    BadPow,
}

impl Injection {
    /// Every feature.
    pub const ALL: [Injection; 12] = [
        Injection::StatusFail,
        Injection::Retirement,
        Injection::DuplicateCoinbase,
        Injection::CoinbaseSpendAtMaturity,
        Injection::CoinbaseSpendBeforeMaturity,
        Injection::DoubleSpendInBlock,
        Injection::DoubleSpendAcrossBlocks,
        Injection::SpendBeforeCreation,
        Injection::BadBtmSignature,
        Injection::BadMerkleRoot,
        Injection::BadCoinbaseAmount,
        Injection::BadPow,
    ];

    /// Whether the sequential validator must reject a block holding it.
    pub fn invalidates_block(self) -> bool {
        !matches!(
            self,
            Injection::StatusFail
                | Injection::Retirement
                | Injection::DuplicateCoinbase
                | Injection::CoinbaseSpendAtMaturity
        )
    }
}

/// Which adversarial features to inject. The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adversity {
    /// Per block, each `(feature, probability)` is drawn independently.
    pub random: Vec<(Injection, f64)>,
    /// Features forced at a height.
    pub at: Vec<(u64, Injection)>,
}

impl Adversity {
    /// No injections.
    pub fn none() -> Adversity {
        Adversity::default()
    }

    /// Only `feature`, at `height`.
    pub fn only(height: u64, feature: Injection) -> Adversity {
        Adversity {
            random: Vec::new(),
            at: vec![(height, feature)],
        }
    }

    /// Every feature of `features`, each with probability `p` per block.
    pub fn random(features: &[Injection], p: f64) -> Adversity {
        Adversity {
            random: features.iter().map(|&f| (f, p)).collect(),
            at: Vec::new(),
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Seeds the wallet keys and every random choice.
    pub seed: u64,
    /// Ordinary transactions per block once the wallet has mature coins (the first 100 blocks
    /// only hold coinbases: the genesis output is not the wallet's).
    pub txs_per_block: usize,
    /// Adversarial features.
    pub adversity: Adversity,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            txs_per_block: 5,
            adversity: Adversity::none(),
        }
    }
}

/// One injection as it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The feature.
    pub kind: Injection,
    /// The transaction carrying it, if any.
    pub tx_index: Option<usize>,
    /// The output it concerns (the double-spent / immature / not-yet-created output), if any.
    pub output_id: Option<Hash>,
}

/// A generated block and what the generator intended for it.
#[derive(Debug, Clone)]
pub struct GeneratedBlock {
    /// The block (nonce 0, PoW not mined).
    pub block: Block,
    /// The statuses the generator committed to in the status root.
    pub status_fail: Vec<bool>,
    /// The injections made (features whose preconditions were not met are left out).
    pub injected: Vec<Injected>,
}

impl GeneratedBlock {
    /// Whether an injection here makes the block invalid under the sequential rules
    /// ([`FlaggedPow`] assumed for [`Injection::BadPow`]).
    pub fn intended_invalid(&self) -> bool {
        self.injected.iter().any(|i| i.kind.invalidates_block())
    }

    /// The first injection of `kind`, if any.
    pub fn injection(&self, kind: Injection) -> Option<&Injected> {
        self.injected.iter().find(|i| i.kind == kind)
    }
}

/// A [`PowCheck`] test double: accepts every block except the flagged hashes.
#[derive(Debug, Clone, Default)]
pub struct FlaggedPow {
    bad: HashSet<Hash>,
}

impl FlaggedPow {
    /// Flags every block of `blocks` carrying [`Injection::BadPow`].
    pub fn from_blocks(blocks: &[GeneratedBlock]) -> FlaggedPow {
        FlaggedPow {
            bad: blocks
                .iter()
                .filter(|b| b.injection(Injection::BadPow).is_some())
                .map(|b| b.block.hash())
                .collect(),
        }
    }
}

impl PowCheck for FlaggedPow {
    fn check(&self, block_hash: &Hash, _seed: &Hash, _bits: u64) -> BlockResult<bool> {
        Ok(!self.bad.contains(block_hash))
    }
}

/// What an ordinary tx slot becomes.
#[derive(Clone, Copy)]
enum TxKind {
    Transfer,
    Issue,
    AssetTransfer,
    Retire,
}

/// Arbitrary data of [`Injection::DuplicateCoinbase`] coinbases.
const DUPLICATE_ARBITRARY: &[u8] = b"bystack devnet duplicate coinbase";

/// A deterministic devnet chain generator; see the module docs.
#[derive(Debug, Clone)]
pub struct ChainGenerator {
    config: GeneratorConfig,
    rng: XorShift,
    wallet: Wallet,
    genesis: Block,
    headers: HeaderChain,
    /// Txs held back by [`Injection::SpendBeforeCreation`], included first in the next block.
    pending: Vec<(Transaction, u64)>,
    /// BTM outputs spent in earlier blocks (for [`Injection::DoubleSpendAcrossBlocks`]; only
    /// kept when the adversity can ask for it).
    spent: Vec<Utxo>,
    track_spent: bool,
    issuance_nonce: u64,
    asset: AssetId,
}

/// Per-block build state.
struct BlockBuild {
    height: u64,
    txs: Vec<Transaction>,
    status_fail: Vec<bool>,
    fees: u64,
    injected: Vec<Injected>,
    spent_here: Vec<Utxo>,
}

impl ChainGenerator {
    /// A generator on the devnet genesis. The wallet seed is `config.seed` (little endian).
    pub fn new(config: GeneratorConfig) -> ChainGenerator {
        let genesis = genesis_block(Network::Devnet);
        let wallet = Wallet::new(&config.seed.to_le_bytes());
        let asset = wallet.asset_of(0);
        let adversity = &config.adversity;
        let track_spent = adversity
            .random
            .iter()
            .any(|&(f, p)| f == Injection::DoubleSpendAcrossBlocks && p > 0.0)
            || adversity
                .at
                .iter()
                .any(|&(_, f)| f == Injection::DoubleSpendAcrossBlocks);
        ChainGenerator {
            rng: XorShift::new(config.seed),
            headers: HeaderChain::new(&genesis.header),
            genesis,
            wallet,
            config,
            pending: Vec::new(),
            spent: Vec::new(),
            track_spent,
            issuance_nonce: 0,
            asset,
        }
    }

    /// The devnet genesis block the chain starts from.
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The wallet's intended view after the blocks generated so far.
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    /// The header chain generated so far (genesis included).
    pub fn headers(&self) -> &HeaderChain {
        &self.headers
    }

    /// The non-BTM asset the wallet issues.
    pub fn asset(&self) -> AssetId {
        self.asset
    }

    /// A clock at which every generated block is acceptable (`now` for validation): the tip's
    /// timestamp.
    pub fn now(&self) -> u64 {
        self.headers.tip().timestamp
    }

    /// Generates `n` blocks.
    pub fn generate(&mut self, n: usize) -> Vec<GeneratedBlock> {
        (0..n).map(|_| self.next_block()).collect()
    }

    /// Generates the next block on the tip.
    pub fn next_block(&mut self) -> GeneratedBlock {
        let height = self.headers.tip_height() + 1;
        let mut features: Vec<Injection> = self
            .config
            .adversity
            .at
            .iter()
            .filter(|(h, _)| *h == height)
            .map(|&(_, f)| f)
            .collect();
        for i in 0..self.config.adversity.random.len() {
            let (f, p) = self.config.adversity.random[i];
            if self.rng.chance(p) && !features.contains(&f) {
                features.push(f);
            }
        }
        let mut b = BlockBuild {
            height,
            txs: Vec::new(),
            status_fail: Vec::new(),
            fees: 0,
            injected: Vec::new(),
            spent_here: Vec::new(),
        };
        let duplicate = features.contains(&Injection::DuplicateCoinbase) && self.pending.is_empty();
        if duplicate {
            b.injected.push(Injected {
                kind: Injection::DuplicateCoinbase,
                tx_index: Some(0),
                output_id: None,
            });
        } else {
            for (tx, fee) in std::mem::take(&mut self.pending) {
                self.push_tx(&mut b, tx, fee, false);
            }
            for &f in &features {
                self.inject(&mut b, f);
            }
            for _ in 0..self.config.txs_per_block {
                self.ordinary_tx(&mut b);
            }
        }
        self.finish(b, &features, duplicate)
    }

    /// Adds `tx` (fee `fee`, status `fail`) to the block and to the wallet's view.
    fn push_tx(&mut self, b: &mut BlockBuild, tx: Transaction, fee: u64, fail: bool) -> usize {
        if self.track_spent {
            for id in &tx.mapped.spent_output_ids {
                if let Some(u) = self.wallet.get(id) {
                    if !fail || u.is_btm() {
                        b.spent_here.push(u.clone());
                    }
                }
            }
        }
        self.wallet.apply_transaction(&tx, b.height, false, fail);
        b.fees += fee;
        b.txs.push(tx);
        b.status_fail.push(fail);
        b.txs.len() // index in the block once the coinbase is put first
    }

    /// A random wallet program: P2WPKH (3 in 4) or P2WSH 2-of-3.
    fn program(&mut self) -> Vec<u8> {
        if self.rng.below(4) == 0 {
            self.wallet
                .p2wsh_program(self.rng.below(u64::from(WALLET_MULTISIGS)) as u32)
        } else {
            self.wallet
                .p2wpkh_program(self.rng.below(u64::from(WALLET_KEYS)) as u32)
        }
    }

    /// Picks a spendable UTXO of `pool`, preferring recent ones (chains of spends): half the
    /// time one of the 4 most recent, otherwise any. The wallet's index answers in O(log n).
    fn pick(&mut self, height: u64, pool: Pool) -> Option<Utxo> {
        let n = self.wallet.spendable_count(height, pool) as u64;
        if n == 0 {
            return None;
        }
        let i = if self.rng.below(2) == 0 {
            n - 1 - self.rng.below(n.min(4))
        } else {
            self.rng.below(n)
        };
        self.wallet.spendable_nth(height, pool, i as usize).cloned()
    }

    fn pick_funding(&mut self, height: u64) -> Option<Utxo> {
        self.pick(height, Pool::Funding)
    }

    fn ordinary_tx(&mut self, b: &mut BlockBuild) {
        let kind = match self.rng.below(10) {
            0..=4 => TxKind::Transfer,
            5 => TxKind::Issue,
            6..=8 => TxKind::AssetTransfer,
            _ => TxKind::Retire,
        };
        let built = match kind {
            TxKind::Transfer => self.transfer(b.height, Witness::Sign, None),
            TxKind::Issue => self.issue(b.height),
            TxKind::AssetTransfer => self
                .asset_transfer(b.height, false)
                .or_else(|| self.issue(b.height)),
            TxKind::Retire => self.retire(b.height),
        };
        if let Some((tx, fee)) = built {
            self.push_tx(b, tx, fee, false);
        }
    }

    /// 1–3 BTM inputs (the first one `first` if given) → 1–3 wallet outputs + change.
    fn transfer(
        &mut self,
        height: u64,
        witness: Witness,
        first: Option<Utxo>,
    ) -> Option<(Transaction, u64)> {
        let mut inputs = vec![match first {
            Some(u) => u,
            None => self.pick_funding(height)?,
        }];
        for _ in 0..self.rng.below(3) {
            if let Some(u) = self.pick(height, Pool::Btm) {
                if inputs.iter().all(|i| i.output_id != u.output_id) {
                    inputs.push(u);
                }
            }
        }
        let total: u64 = inputs.iter().map(|u| u.amount).sum();
        let mut outputs = Vec::new();
        let mut budget = total / 2;
        for _ in 0..=self.rng.below(3) {
            let amount = budget / 2 + self.rng.below(budget / 4 + 1);
            if amount == 0 {
                break;
            }
            budget -= amount;
            outputs.push(TxOutput::new(BTM_ASSET_ID, amount, self.program()));
        }
        let change = self.program();
        self.wallet.build(
            inputs
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    (
                        u.spend_input(),
                        if i == 0 { witness } else { Witness::Sign },
                    )
                })
                .collect(),
            outputs,
            change,
        )
    }

    /// A BTM-funded issuance of the wallet's asset to a wallet program.
    fn issue(&mut self, height: u64) -> Option<(Transaction, u64)> {
        let fund = self.pick_funding(height)?;
        self.issuance_nonce += 1;
        let amount = 1_000 + self.rng.below(1_000_000);
        let (input, asset) =
            self.wallet
                .issuance_input(0, amount, &self.issuance_nonce.to_le_bytes());
        let out = TxOutput::new(asset, amount, self.program());
        let change = self.program();
        self.wallet.build(
            vec![(fund.spend_input(), Witness::Sign), (input, Witness::Sign)],
            vec![out],
            change,
        )
    }

    /// BTM for the fee + 1–2 asset inputs → 1–2 asset outputs. `bad_asset_signature`: the
    /// first asset input gets a bad signature (a status-fail tx).
    fn asset_transfer(
        &mut self,
        height: u64,
        bad_asset_signature: bool,
    ) -> Option<(Transaction, u64)> {
        let asset = self.asset;
        let first = self.pick(height, Pool::Asset(asset))?;
        let fund = self.pick_funding(height)?;
        let mut assets = vec![first];
        if self.rng.below(2) == 0 {
            if let Some(u) = self.pick(height, Pool::Asset(asset)) {
                if u.output_id != assets[0].output_id {
                    assets.push(u);
                }
            }
        }
        let total: u64 = assets.iter().map(|u| u.amount).sum();
        let part = self.rng.below(total);
        let mut outputs = vec![TxOutput::new(asset, total - part, self.program())];
        if part > 0 {
            outputs.push(TxOutput::new(asset, part, self.program()));
        }
        let mut inputs = vec![(fund.spend_input(), Witness::Sign)];
        for (i, u) in assets.iter().enumerate() {
            let w = if bad_asset_signature && i == 0 {
                Witness::BadSignature
            } else {
                Witness::Sign
            };
            inputs.push((u.spend_input(), w));
        }
        let change = self.program();
        self.wallet.build(inputs, outputs, change)
    }

    /// Retires part of a BTM input (or, half the time when held, of an asset input).
    fn retire(&mut self, height: u64) -> Option<(Transaction, u64)> {
        let asset = self.asset;
        let fund = self.pick_funding(height)?;
        let retire_program = vec![crate::vm::op::FAIL, 0x04, b'b', b'u', b'r', b'n'];
        let asset_input = if self.rng.below(2) == 0 {
            self.pick(height, Pool::Asset(asset))
        } else {
            None
        };
        let mut inputs = vec![(fund.spend_input(), Witness::Sign)];
        let mut outputs = Vec::new();
        match asset_input {
            Some(u) => {
                let burn = 1 + self.rng.below(u.amount);
                outputs.push(TxOutput::new(asset, burn, retire_program));
                if u.amount > burn {
                    outputs.push(TxOutput::new(asset, u.amount - burn, self.program()));
                }
                inputs.push((u.spend_input(), Witness::Sign));
            }
            None => {
                let burn = 1 + self.rng.below(fund.amount / 4);
                outputs.push(TxOutput::new(BTM_ASSET_ID, burn, retire_program));
            }
        }
        let change = self.program();
        self.wallet.build(inputs, outputs, change)
    }

    fn note(b: &mut BlockBuild, kind: Injection, tx_index: Option<usize>, id: Option<Hash>) {
        b.injected.push(Injected {
            kind,
            tx_index,
            output_id: id,
        });
    }

    /// Makes the transaction-level injection `f` (header-level ones are applied in `finish`).
    fn inject(&mut self, b: &mut BlockBuild, f: Injection) {
        let h = b.height;
        match f {
            Injection::StatusFail => {
                if let Some((tx, fee)) = self.asset_transfer(h, true) {
                    let i = self.push_tx(b, tx, fee, true);
                    Self::note(b, f, Some(i), None);
                }
            }
            Injection::Retirement => {
                if let Some((tx, fee)) = self.retire(h) {
                    let i = self.push_tx(b, tx, fee, false);
                    Self::note(b, f, Some(i), None);
                }
            }
            Injection::CoinbaseSpendAtMaturity | Injection::CoinbaseSpendBeforeMaturity => {
                let age = if f == Injection::CoinbaseSpendAtMaturity {
                    100
                } else {
                    99
                };
                let Some(created) = h.checked_sub(age) else {
                    return;
                };
                let Some(u) = self
                    .wallet
                    .utxos()
                    .values()
                    .find(|u| u.coinbase && u.height == created)
                    .cloned()
                else {
                    return;
                };
                let id = u.output_id;
                if let Some((tx, fee)) = self.transfer(h, Witness::Sign, Some(u)) {
                    let i = self.push_tx(b, tx, fee, false);
                    Self::note(b, f, Some(i), Some(id));
                }
            }
            Injection::DoubleSpendInBlock => {
                let Some(u) = self.pick_funding(h) else {
                    return;
                };
                let id = u.output_id;
                let Some((first, fee1)) = self.transfer(h, Witness::Sign, Some(u.clone())) else {
                    return;
                };
                self.push_tx(b, first, fee1, false);
                // A different tx (other outputs) spending the same output.
                if let Some((second, fee2)) = self.transfer(h, Witness::Sign, Some(u)) {
                    let i = self.push_tx(b, second, fee2, false);
                    Self::note(b, f, Some(i), Some(id));
                }
            }
            Injection::DoubleSpendAcrossBlocks => {
                let candidates: Vec<usize> = (0..self.spent.len())
                    .filter(|&i| self.spent[i].amount >= MIN_FUNDING && !self.spent[i].coinbase)
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let u = self.spent[candidates[self.rng.below(candidates.len() as u64) as usize]]
                    .clone();
                let id = u.output_id;
                if let Some((tx, fee)) = self.transfer(h, Witness::Sign, Some(u)) {
                    let i = self.push_tx(b, tx, fee, false);
                    Self::note(b, f, Some(i), Some(id));
                }
            }
            Injection::SpendBeforeCreation => {
                let Some((creator, creator_fee)) = self.transfer(h, Witness::Sign, None) else {
                    return;
                };
                // The wallet sees the creator first so the spender can use its output; the
                // creator itself only goes into the next block.
                self.wallet.apply_transaction(&creator, h, false, false);
                let created = creator.mapped.results[0].id;
                let Some(u) = self.wallet.get(&created).cloned() else {
                    return;
                };
                self.pending.push((creator, creator_fee));
                if let Some((tx, fee)) = self.transfer(h, Witness::Sign, Some(u)) {
                    let i = self.push_tx(b, tx, fee, false);
                    Self::note(b, f, Some(i), Some(created));
                }
            }
            Injection::BadBtmSignature => {
                if let Some((tx, fee)) = self.transfer(h, Witness::BadSignature, None) {
                    let i = self.push_tx(b, tx, fee, false);
                    Self::note(b, f, Some(i), None);
                }
            }
            Injection::BadMerkleRoot
            | Injection::BadCoinbaseAmount
            | Injection::BadPow
            | Injection::DuplicateCoinbase => {}
        }
    }

    /// Coinbase, header, bookkeeping.
    fn finish(
        &mut self,
        mut b: BlockBuild,
        features: &[Injection],
        duplicate: bool,
    ) -> GeneratedBlock {
        let h = b.height;
        let mut amount = block_subsidy(h) + b.fees;
        if features.contains(&Injection::BadCoinbaseAmount) {
            amount += 1;
            Self::note(&mut b, Injection::BadCoinbaseAmount, Some(0), None);
        }
        let (arbitrary, program) = if duplicate {
            (DUPLICATE_ARBITRARY.to_vec(), self.wallet.p2wpkh_program(0))
        } else {
            let key = self.rng.below(u64::from(WALLET_KEYS)) as u32;
            (h.to_le_bytes().to_vec(), self.wallet.p2wpkh_program(key))
        };
        let coinbase = Transaction::new(TxData {
            version: 1,
            time_range: 0,
            inputs: vec![TxInput::Coinbase(CoinbaseInput {
                arbitrary,
                ..CoinbaseInput::default()
            })],
            outputs: vec![TxOutput::new(BTM_ASSET_ID, amount, program)],
        })
        .expect("a well-formed coinbase");
        self.wallet.apply_transaction(&coinbase, h, true, false);
        let mut transactions = vec![coinbase];
        transactions.append(&mut b.txs);
        let mut status_fail = vec![false];
        status_fail.append(&mut b.status_fail);

        let parent = self.headers.tip_info();
        let tx_ids: Vec<Hash> = transactions.iter().map(Transaction::id).collect();
        let mut header = BlockHeader {
            version: 1,
            height: h,
            previous_block_hash: parent.hash,
            timestamp: self.headers.tip().timestamp.max(parent.median_time)
                + 60
                + self.rng.below(180),
            transactions_merkle_root: tx_merkle_root(&tx_ids),
            transaction_status_hash: tx_status_merkle_root(&status_fail),
            nonce: 0,
            bits: parent.bits_expected,
            commitment_suffix: Vec::new(),
        };
        if features.contains(&Injection::BadMerkleRoot) {
            header.transactions_merkle_root.0[0] ^= 1;
            Self::note(&mut b, Injection::BadMerkleRoot, None, None);
        }
        if features.contains(&Injection::BadPow) {
            Self::note(&mut b, Injection::BadPow, None, None);
        }
        self.headers.push(header.clone());
        self.spent.append(&mut b.spent_here);
        GeneratedBlock {
            block: Block {
                header,
                transactions,
            },
            status_fail,
            injected: b.injected,
        }
    }
}

/// The error a [`FlaggedPow`] reports for a flagged block (for matching in tests).
pub fn work_proof_error(block: &Block) -> BlockError {
    BlockError::WorkProof { hash: block.hash() }
}
