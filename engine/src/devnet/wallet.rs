//! A deterministic devnet wallet: ed25519 keys derived from a seed, P2WPKH and 2-of-3 P2WSH
//! programs, the wallet's own view of its unspent outputs, and signed transactions with fees
//! that cover their gas.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ripemd::Digest as _;

use crate::consensus::VM_GAS_RATE;
use crate::ed25519::SigningKey;
use crate::entries::{EntryType, InputEntry};
use crate::hash::{sha3, AssetId, Hash, BTM_ASSET_ID};
use crate::tx::{IssuanceInput, SpendInput, Transaction, TxData, TxInput, TxOutput};
use crate::vm::{multisig_program, p2wpkh_program, p2wsh_program};

/// Number of single keys (P2WPKH programs) a [`Wallet`] holds.
pub const WALLET_KEYS: u32 = 8;
/// Number of 2-of-3 multisig groups (P2WSH programs) a [`Wallet`] holds.
pub const WALLET_MULTISIGS: u32 = 2;

/// VM gas budgeted per P2WPKH spend or issuance (an upper bound; the excess is fee).
pub const VM_GAS_P2WPKH: u64 = 2_000;
/// VM gas budgeted per 2-of-3 P2WSH spend (an upper bound; the excess is fee).
pub const VM_GAS_P2WSH: u64 = 5_000;
/// Gas added to every estimate, so that a few bytes more or less never matter.
pub const GAS_SLACK: u64 = 200;
/// Smallest BTM output that can fund a transaction on its own (1 BTM): the
/// [`Pool::Funding`] threshold.
pub const MIN_FUNDING: u64 = 100_000_000;

/// A class of spendable outputs [`Wallet::spendable_count`] and [`Wallet::spendable_nth`]
/// draw from, each kept in creation order by an incremental index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    /// Every BTM output.
    Btm,
    /// BTM outputs of at least [`MIN_FUNDING`].
    Funding,
    /// Outputs of one non-BTM asset.
    Asset(AssetId),
}

impl Pool {
    /// Whether `utxo` belongs to the pool.
    pub fn contains(self, utxo: &Utxo) -> bool {
        match self {
            Pool::Btm => utxo.is_btm(),
            Pool::Funding => utxo.is_btm() && utxo.amount >= MIN_FUNDING,
            Pool::Asset(asset) => !utxo.is_btm() && utxo.asset_id == asset,
        }
    }
}

/// Who can spend a control program of the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// P2WPKH of key `n`.
    Key(u32),
    /// P2WSH of the 2-of-3 multisig group `n`.
    Multisig(u32),
}

/// How an input's witness is filled when signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witness {
    /// The correct witness for the program the input spends or issues with.
    Sign,
    /// A well-formed witness whose signature(s) sign another message: the VM returns false.
    BadSignature,
    /// Leave the arguments as they are (e.g. an issuance with program `TRUE`).
    Keep,
}

/// One unspent output the wallet owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// The output entry ID (the UTXO key).
    pub output_id: Hash,
    /// The mux that created it (`SpendInput::source_id`).
    pub source_id: Hash,
    /// Its index among the creating transaction's outputs.
    pub source_position: u64,
    /// Its asset.
    pub asset_id: AssetId,
    /// Its amount.
    pub amount: u64,
    /// Its control program.
    pub control_program: Vec<u8>,
    /// Height of the block that created it.
    pub height: u64,
    /// Created by a block's coinbase (needs 100 blocks of maturity).
    pub coinbase: bool,
    /// Creation order in the wallet (larger = more recent).
    pub seq: u64,
}

impl Utxo {
    /// A spend of this output (witness empty until signed).
    pub fn spend_input(&self) -> TxInput {
        TxInput::Spend(SpendInput {
            source_id: self.source_id,
            asset_id: self.asset_id,
            amount: self.amount,
            source_position: self.source_position,
            control_program: self.control_program.clone(),
            ..SpendInput::default()
        })
    }

    /// Whether the UTXO rules let a block at `height` spend it (coinbase maturity).
    pub fn mature_at(&self, height: u64) -> bool {
        !self.coinbase || self.height + crate::consensus::COINBASE_PENDING_BLOCK_NUMBER <= height
    }

    /// Whether it holds BTM.
    pub fn is_btm(&self) -> bool {
        self.asset_id == BTM_ASSET_ID
    }
}

/// A 2-of-3 multisig group.
#[derive(Debug, Clone)]
struct Multisig {
    keys: [SigningKey; 3],
    script: Vec<u8>,
}

/// A set of creation numbers (`Utxo::seq`, from 1) with rank queries: a Fenwick tree over
/// presence bits, grown by doubling, so insert, remove and "the n-th smallest" are
/// O(log n) and a pick never sorts the pool.
#[derive(Debug, Clone, Default)]
struct SeqSet {
    /// `tree[i]` counts the members in `(i - lowbit(i), i]`; `tree[0]` is unused.
    tree: Vec<u32>,
    present: Vec<bool>,
    len: usize,
}

impl SeqSet {
    fn capacity(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    fn grow(&mut self, seq: usize) {
        let capacity = (seq + 1).next_power_of_two().max(64);
        self.present.resize(capacity + 1, false);
        // Rebuild in O(capacity): counts at the leaves, each node pushed to its parent.
        self.tree = self.present.iter().map(|&p| u32::from(p)).collect();
        for i in 1..=capacity {
            let parent = i + (i & i.wrapping_neg());
            if parent <= capacity {
                self.tree[parent] += self.tree[i];
            }
        }
    }

    fn update(&mut self, seq: usize, add: bool) {
        let capacity = self.capacity();
        let mut i = seq;
        while i <= capacity {
            if add {
                self.tree[i] += 1;
            } else {
                self.tree[i] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    fn insert(&mut self, seq: u64) {
        let seq = seq as usize;
        if seq > self.capacity() {
            self.grow(seq);
        }
        if !self.present[seq] {
            self.present[seq] = true;
            self.len += 1;
            self.update(seq, true);
        }
    }

    fn remove(&mut self, seq: u64) {
        let seq = seq as usize;
        if self.present.get(seq).copied().unwrap_or(false) {
            self.present[seq] = false;
            self.len -= 1;
            self.update(seq, false);
        }
    }

    /// The `rank`-th smallest member (from 0).
    fn nth(&self, rank: usize) -> Option<u64> {
        if rank >= self.len {
            return None;
        }
        let capacity = self.capacity();
        let mut pos = 0;
        let mut remaining = rank as u32 + 1;
        let mut step = capacity.next_power_of_two();
        while step > 0 {
            if pos + step <= capacity && self.tree[pos + step] < remaining {
                pos += step;
                remaining -= self.tree[pos];
            }
            step /= 2;
        }
        Some(pos as u64 + 1)
    }
}

/// The wallet's spendable outputs by [`Pool`], in creation order. Coinbase outputs wait in
/// `immature` until a query at a height where they are mature; the index then answers for
/// that height and every later one (queries at an earlier height fall back to a scan).
#[derive(Debug, Clone, Default)]
struct SpendIndex {
    btm: SeqSet,
    funding: SeqSet,
    assets: HashMap<AssetId, SeqSet>,
    /// `(height at which it matures, seq)` of coinbase outputs not yet in a pool.
    immature: BTreeSet<(u64, u64)>,
    /// Every coinbase output maturing at or below this height is in the pools.
    matured_to: u64,
    /// Output ID by `seq - 1`.
    ids: Vec<Hash>,
}

fn maturity_height(utxo: &Utxo) -> u64 {
    utxo.height
        .saturating_add(crate::consensus::COINBASE_PENDING_BLOCK_NUMBER)
}

impl SpendIndex {
    fn sets(&mut self, utxo: &Utxo) -> [Option<&mut SeqSet>; 2] {
        if utxo.is_btm() {
            let funding = (utxo.amount >= MIN_FUNDING).then_some(&mut self.funding);
            [Some(&mut self.btm), funding]
        } else {
            [Some(self.assets.entry(utxo.asset_id).or_default()), None]
        }
    }

    fn set(&self, pool: Pool) -> Option<&SeqSet> {
        match pool {
            Pool::Btm => Some(&self.btm),
            Pool::Funding => Some(&self.funding),
            Pool::Asset(asset) => self.assets.get(&asset),
        }
    }

    fn pool(&mut self, utxo: &Utxo) {
        for set in self.sets(utxo).into_iter().flatten() {
            set.insert(utxo.seq);
        }
    }

    fn insert(&mut self, utxo: &Utxo) {
        let slot = (utxo.seq as usize).saturating_sub(1);
        if self.ids.len() <= slot {
            self.ids.resize(slot + 1, Hash::ZERO);
        }
        self.ids[slot] = utxo.output_id;
        if utxo.coinbase && maturity_height(utxo) > self.matured_to {
            self.immature.insert((maturity_height(utxo), utxo.seq));
        } else {
            self.pool(utxo);
        }
    }

    fn remove(&mut self, utxo: &Utxo) {
        if !(utxo.coinbase && self.immature.remove(&(maturity_height(utxo), utxo.seq))) {
            for set in self.sets(utxo).into_iter().flatten() {
                set.remove(utxo.seq);
            }
        }
    }

    /// Moves every coinbase output mature at `height` into the pools. False when the index
    /// already answers for a later height (the caller then scans).
    fn mature(&mut self, height: u64, utxos: &BTreeMap<Hash, Utxo>) -> bool {
        if height < self.matured_to {
            return false;
        }
        while let Some(&(at, seq)) = self.immature.first() {
            if at > height {
                break;
            }
            self.immature.pop_first();
            let id = self.ids[(seq - 1) as usize];
            if let Some(utxo) = utxos.get(&id).filter(|u| u.seq == seq) {
                for set in self.sets(utxo).into_iter().flatten() {
                    set.insert(seq);
                }
            }
        }
        self.matured_to = height;
        true
    }
}

/// A deterministic wallet. Keys are `SigningKey::from_seed(SHA3(seed ‖ index_le32))`: single
/// keys use indices `0..WALLET_KEYS`, multisig group `g` uses `1000 + 3g + {0,1,2}`.
#[derive(Debug, Clone)]
pub struct Wallet {
    keys: Vec<SigningKey>,
    multisigs: Vec<Multisig>,
    owners: HashMap<Vec<u8>, Owner>,
    utxos: BTreeMap<Hash, Utxo>,
    index: SpendIndex,
    seq: u64,
}

fn derive_key(seed: &[u8], index: u32) -> SigningKey {
    let mut material = seed.to_vec();
    material.extend_from_slice(&index.to_le_bytes());
    SigningKey::from_seed(&sha3(&material).0)
}

fn p2wpkh_of(key: &SigningKey) -> Vec<u8> {
    let hash: [u8; 20] = ripemd::Ripemd160::digest(key.public_key()).into();
    p2wpkh_program(&hash)
}

impl Wallet {
    /// The wallet of `seed`, with no UTXOs.
    pub fn new(seed: &[u8]) -> Wallet {
        let keys: Vec<SigningKey> = (0..WALLET_KEYS).map(|i| derive_key(seed, i)).collect();
        let multisigs: Vec<Multisig> = (0..WALLET_MULTISIGS)
            .map(|g| {
                let keys = [0, 1, 2].map(|j| derive_key(seed, 1000 + 3 * g + j));
                let pks: Vec<[u8; 32]> = keys.iter().map(SigningKey::public_key).collect();
                // Three 32-byte keys and M = 2 are always a valid multisig.
                let script = multisig_program(&pks, 2).expect("2-of-3 multisig script");
                Multisig { keys, script }
            })
            .collect();
        let mut owners = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            owners.insert(p2wpkh_of(k), Owner::Key(i as u32));
        }
        for (g, m) in multisigs.iter().enumerate() {
            owners.insert(p2wsh_program(&sha3(&m.script).0), Owner::Multisig(g as u32));
        }
        Wallet {
            keys,
            multisigs,
            owners,
            utxos: BTreeMap::new(),
            index: SpendIndex::default(),
            seq: 0,
        }
    }

    /// Single key `index`.
    ///
    /// # Panics
    /// If `index >= WALLET_KEYS`.
    pub fn key(&self, index: u32) -> &SigningKey {
        &self.keys[index as usize]
    }

    /// The P2WPKH control program of key `index` (`00 14 RIPEMD160(pubkey)`).
    ///
    /// # Panics
    /// If `index >= WALLET_KEYS`.
    pub fn p2wpkh_program(&self, index: u32) -> Vec<u8> {
        p2wpkh_of(self.key(index))
    }

    /// The P2WSH control program of multisig group `group` (`00 20 SHA3(script)`).
    ///
    /// # Panics
    /// If `group >= WALLET_MULTISIGS`.
    pub fn p2wsh_program(&self, group: u32) -> Vec<u8> {
        p2wsh_program(&sha3(&self.multisigs[group as usize].script).0)
    }

    /// The witness script (`TXSIGHASH pk1 pk2 pk3 2 3 CHECKMULTISIG`) of group `group`.
    ///
    /// # Panics
    /// If `group >= WALLET_MULTISIGS`.
    pub fn multisig_script(&self, group: u32) -> &[u8] {
        &self.multisigs[group as usize].script
    }

    /// Who owns `program`, if the wallet does.
    pub fn owner(&self, program: &[u8]) -> Option<Owner> {
        self.owners.get(program).copied()
    }

    /// Every UTXO the wallet believes it has, by output ID.
    pub fn utxos(&self) -> &BTreeMap<Hash, Utxo> {
        &self.utxos
    }

    /// The UTXO `id`, if the wallet has it.
    pub fn get(&self, id: &Hash) -> Option<&Utxo> {
        self.utxos.get(id)
    }

    /// UTXOs a block at `height` may spend, oldest first.
    pub fn spendable(&self, height: u64) -> Vec<&Utxo> {
        let mut v: Vec<&Utxo> = self
            .utxos
            .values()
            .filter(|u| u.mature_at(height))
            .collect();
        v.sort_by_key(|u| u.seq);
        v
    }

    /// How many UTXOs of `pool` a block at `height` may spend: `spendable(height)` filtered
    /// by [`Pool::contains`], counted without a scan when `height` is not below an earlier
    /// query's (O(log n) per newly mature coinbase output).
    pub fn spendable_count(&mut self, height: u64, pool: Pool) -> usize {
        if self.index.mature(height, &self.utxos) {
            self.index.set(pool).map_or(0, |set| set.len)
        } else {
            self.scan(height, pool).count()
        }
    }

    /// The `n`-th (from 0, oldest first) UTXO of `pool` a block at `height` may spend: the
    /// same output as `spendable(height)` filtered by [`Pool::contains`] and indexed by `n`,
    /// found in O(log n) under the same condition as [`Wallet::spendable_count`].
    pub fn spendable_nth(&mut self, height: u64, pool: Pool, n: usize) -> Option<&Utxo> {
        if self.index.mature(height, &self.utxos) {
            let seq = self.index.set(pool)?.nth(n)?;
            self.utxos.get(&self.index.ids[(seq - 1) as usize])
        } else {
            self.scan(height, pool).nth(n)
        }
    }

    fn scan(&self, height: u64, pool: Pool) -> impl Iterator<Item = &Utxo> {
        self.spendable(height)
            .into_iter()
            .filter(move |u| pool.contains(u))
    }

    /// The witness arguments for `program` over `message`.
    fn witness_args(&self, program: &[u8], message: &Hash, mode: Witness) -> Option<Vec<Vec<u8>>> {
        let signed: [u8; 32] = match mode {
            Witness::Keep => return None,
            Witness::Sign => message.0,
            // A valid signature of another message: well formed, fails CHECKSIG.
            Witness::BadSignature => sha3(&message.0).0,
        };
        match self.owner(program)? {
            Owner::Key(i) => {
                let k = self.key(i);
                Some(vec![k.sign(&signed).to_vec(), k.public_key().to_vec()])
            }
            Owner::Multisig(g) => {
                // Keys 0 and 2 sign, in key order, then the witness script (spec §6 P2WSH).
                let m = &self.multisigs[g as usize];
                Some(vec![
                    m.keys[0].sign(&signed).to_vec(),
                    m.keys[2].sign(&signed).to_vec(),
                    m.script.clone(),
                ])
            }
        }
    }

    /// Signs `data`: input `i` gets the witness `witnesses[i]` (missing entries mean
    /// [`Witness::Sign`]); the message is `MappedTx::sighash(i)`. Witnesses are not part of the
    /// IDs, so signing does not change them. Inputs whose program the wallet does not own keep
    /// their arguments.
    ///
    /// # Panics
    /// If `data` does not map (the wallet only builds well-formed transactions).
    pub fn sign(&self, mut data: TxData, witnesses: &[Witness]) -> Transaction {
        let unsigned = Transaction::new(data.clone()).expect("a well-formed transaction");
        for (i, input) in data.inputs.iter_mut().enumerate() {
            let mode = witnesses.get(i).copied().unwrap_or(Witness::Sign);
            let Some(message) = unsigned.sighash(i) else {
                continue;
            };
            match input {
                TxInput::Spend(s) => {
                    if let Some(args) = self.witness_args(&s.control_program, &message, mode) {
                        s.arguments = args;
                    }
                }
                TxInput::Issuance(s) => {
                    if let Some(args) = self.witness_args(&s.issuance_program, &message, mode) {
                        s.arguments = args;
                    }
                }
                TxInput::Coinbase(_) | TxInput::Opaque(_) => {}
            }
        }
        Transaction::new(data).expect("a well-formed transaction")
    }

    /// The gas budget of `tx`: storage gas (its serialized size) plus a per-input VM gas
    /// estimate ([`VM_GAS_P2WPKH`], [`VM_GAS_P2WSH`]) plus [`GAS_SLACK`].
    pub fn estimate_gas(&self, tx: &Transaction) -> u64 {
        let vm: u64 = tx
            .data
            .inputs
            .iter()
            .map(|input| {
                let program = match input {
                    TxInput::Spend(s) => &s.control_program,
                    TxInput::Issuance(s) => &s.issuance_program,
                    _ => return 0,
                };
                match self.owner(program) {
                    Some(Owner::Multisig(_)) => VM_GAS_P2WSH,
                    _ => VM_GAS_P2WPKH,
                }
            })
            .sum();
        tx.serialized_size + vm + GAS_SLACK
    }

    /// Builds and signs a version-1 transaction: `inputs` (with their witness modes), the
    /// given `outputs`, and a BTM change output to `change_program` carrying
    /// `btm_in − Σ BTM outputs − fee`, where fee = [`Wallet::estimate_gas`] × 200 neu.
    /// Returns the transaction and its fee, or `None` when the BTM does not cover the fee
    /// plus a non-zero change.
    pub fn build(
        &self,
        inputs: Vec<(TxInput, Witness)>,
        outputs: Vec<TxOutput>,
        change_program: Vec<u8>,
    ) -> Option<(Transaction, u64)> {
        let btm_in: u64 = inputs
            .iter()
            .map(|(i, _)| match i {
                TxInput::Spend(s) if s.asset_id == BTM_ASSET_ID => s.amount,
                _ => 0,
            })
            .sum();
        let btm_out: u64 = outputs
            .iter()
            .filter(|o| o.asset_id == BTM_ASSET_ID)
            .map(|o| o.amount)
            .sum();
        let available = btm_in.checked_sub(btm_out)?;
        let (inputs, modes): (Vec<TxInput>, Vec<Witness>) = inputs.into_iter().unzip();
        let make = |change: u64| {
            let mut outs = outputs.clone();
            outs.push(TxOutput::new(BTM_ASSET_ID, change, change_program.clone()));
            let data = TxData {
                version: 1,
                time_range: 0,
                inputs: inputs.clone(),
                outputs: outs,
            };
            self.sign(data, &modes)
        };
        // The change amount's varint length barely depends on the fee: GAS_SLACK covers it.
        let probe = make(available.saturating_sub(1).max(1));
        let fee = self.estimate_gas(&probe) * VM_GAS_RATE as u64;
        let change = available.checked_sub(fee).filter(|&c| c > 0)?;
        Some((make(change), fee))
    }

    /// A new issuance input of `amount` with key `issuer`'s P2WPKH issuance program; `nonce`
    /// makes its entry unique. Returns the input and the asset ID.
    ///
    /// # Panics
    /// If `issuer >= WALLET_KEYS`.
    pub fn issuance_input(&self, issuer: u32, amount: u64, nonce: &[u8]) -> (TxInput, AssetId) {
        let input = IssuanceInput {
            nonce: nonce.to_vec(),
            amount,
            asset_definition: b"{\"name\":\"DEVGOLD\"}".to_vec(),
            vm_version: 1,
            issuance_program: self.p2wpkh_program(issuer),
            arguments: Vec::new(),
            commitment_suffix: Vec::new(),
            witness_suffix: Vec::new(),
        };
        let asset = input.asset_id();
        (TxInput::Issuance(input), asset)
    }

    /// The asset that key `issuer` issues (see [`Wallet::issuance_input`]).
    pub fn asset_of(&self, issuer: u32) -> AssetId {
        self.issuance_input(issuer, 0, &[]).1
    }

    /// Updates the wallet's view as the UTXO rules would for `tx` in a block at `height`:
    /// spent outputs leave, owned outputs arrive (retirements never do). A status-fail
    /// transaction touches only BTM. A re-created output ID (a duplicate coinbase) replaces the
    /// old entry, as in storage.
    pub fn apply_transaction(
        &mut self,
        tx: &Transaction,
        height: u64,
        coinbase: bool,
        status_fail: bool,
    ) {
        for entry in &tx.mapped.inputs {
            if let InputEntry::Spend {
                spent_output_id,
                asset_id,
                ..
            } = *entry
            {
                if !status_fail || asset_id == BTM_ASSET_ID {
                    if let Some(old) = self.utxos.remove(&spent_output_id) {
                        self.index.remove(&old);
                    }
                }
            }
        }
        for (position, (result, out)) in tx.mapped.results.iter().zip(&tx.data.outputs).enumerate()
        {
            if result.kind != EntryType::Output || (status_fail && out.asset_id != BTM_ASSET_ID) {
                continue;
            }
            if self.owner(&out.control_program).is_none() {
                continue;
            }
            self.seq += 1;
            let utxo = Utxo {
                output_id: result.id,
                source_id: tx.mapped.mux_id,
                source_position: position as u64,
                asset_id: out.asset_id,
                amount: out.amount,
                control_program: out.control_program.clone(),
                height,
                coinbase,
                seq: self.seq,
            };
            self.index.insert(&utxo);
            if let Some(old) = self.utxos.insert(result.id, utxo) {
                self.index.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::XorShift;
    use std::collections::BTreeSet;

    #[test]
    fn seq_set_ranks_match_a_sorted_set() {
        let mut rng = XorShift::new(99);
        let mut set = SeqSet::default();
        let mut oracle = BTreeSet::new();
        for step in 0..20_000u64 {
            let seq = 1 + rng.below(3_000 + step / 4);
            if rng.below(3) == 0 {
                set.remove(seq);
                oracle.remove(&seq);
            } else {
                set.insert(seq);
                oracle.insert(seq);
            }
            assert_eq!(set.len, oracle.len());
            if step % 97 == 0 {
                for (rank, &seq) in oracle.iter().enumerate() {
                    assert_eq!(set.nth(rank), Some(seq), "rank {rank}");
                }
                assert_eq!(set.nth(oracle.len()), None);
            }
        }
    }

    /// The index answers exactly what a scan of `spendable` does, at rising heights (the
    /// index) and at earlier ones (the scan fallback), while outputs come and go and
    /// coinbase outputs mature.
    #[test]
    fn spendable_pools_match_the_scan() {
        let mut wallet = Wallet::new(b"pools");
        let asset = wallet.asset_of(0);
        let mut rng = XorShift::new(7);
        let program = wallet.p2wpkh_program(1);
        let mut live: Vec<Hash> = Vec::new();
        for height in 1..400u64 {
            // Remove a few outputs as a spend would.
            for _ in 0..rng.below(3) {
                if live.is_empty() {
                    break;
                }
                let id = live.swap_remove(rng.below(live.len() as u64) as usize);
                if let Some(old) = wallet.utxos.remove(&id) {
                    wallet.index.remove(&old);
                }
            }
            // Add outputs: one coinbase, some BTM of both sizes, some of the asset.
            for k in 0..1 + rng.below(4) {
                wallet.seq += 1;
                let coinbase = k == 0;
                let btm = coinbase || rng.below(3) != 0;
                let utxo = Utxo {
                    output_id: sha3(&[height.to_le_bytes(), k.to_le_bytes()].concat()),
                    source_id: Hash::ZERO,
                    source_position: k,
                    asset_id: if btm { BTM_ASSET_ID } else { asset },
                    amount: if rng.below(2) == 0 {
                        MIN_FUNDING
                    } else {
                        1_000
                    },
                    control_program: program.clone(),
                    height,
                    coinbase,
                    seq: wallet.seq,
                };
                live.push(utxo.output_id);
                wallet.index.insert(&utxo);
                wallet.utxos.insert(utxo.output_id, utxo);
            }
            let query = if height % 10 == 0 {
                height.saturating_sub(150) // below an earlier query: the scan
            } else {
                height
            };
            for pool in [Pool::Btm, Pool::Funding, Pool::Asset(asset)] {
                let expected: Vec<Hash> = wallet
                    .spendable(query)
                    .into_iter()
                    .filter(|u| pool.contains(u))
                    .map(|u| u.output_id)
                    .collect();
                assert_eq!(wallet.spendable_count(query, pool), expected.len());
                for (n, id) in expected.iter().enumerate() {
                    let got = wallet.spendable_nth(query, pool, n).map(|u| u.output_id);
                    assert_eq!(got, Some(*id), "{pool:?} at {query}, rank {n}");
                }
                assert!(wallet.spendable_nth(query, pool, expected.len()).is_none());
            }
        }
    }
}
