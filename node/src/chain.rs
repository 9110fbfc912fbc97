//! The chain manager (Bytom's `protocol.Chain`): a block index with cumulative work, Bytom's
//! fork choice, an orphan pool, reorganisations by detaching and attaching UTXO views, and the
//! two validation paths of the engine — sequential [`validate_block`] for single blocks near
//! the tip ([`Chain::process_block`]) and PSWV [`validate_window`] for sync windows
//! ([`Chain::process_window`]).
//!
//! Every state change lands in ONE [`StoreBatch`]: a block that extends the tip (block,
//! header, statuses, UTXO writes, undo data, main-chain entry, tip), a side-chain block, a
//! whole reorganisation (detached blocks off the main chain, attached blocks on, the net UTXO
//! writes, the new tip), or a whole PSWV window's valid prefix. A crash leaves the database at
//! the last committed batch, and [`Chain::open`] rebuilds the index from it.
//!
//! Fork choice, as Bytom 1.1.1: a block that extends the tip is connected; any other block is
//! stored on its side branch, and that branch becomes the main chain when its block is
//! **higher** than the tip **and** has at least the tip's cumulative work (equal work at a
//! greater height wins; a tie in height never switches).
//!
//! Reorganisation: detach the main chain down to the fork point (each block with the engine's
//! [`UtxoView::detach_block`], then its undo data restores the exact entries it touched),
//! then attach the new branch (each block with [`UtxoView::apply_block_with_status`] and the
//! statuses stored when it was validated), every step over an [`Overlay`] of the database, so
//! that nothing is written unless the whole branch connects. Undo data is this node's
//! addition to Bytom's scheme: Bytom re-creates a spent non-coinbase output at height 0 and
//! loses an output that a duplicate coinbase overwrote; restoring the stored entries makes the
//! UTXO set after a reorganisation the one a node that only saw the winning branch holds.

mod index;
mod orphan;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bystack_engine::entries::EntryType;
use bystack_engine::pswv::{validate_window, Overlay, WindowError};
use bystack_engine::validation::{
    validate_block, BlockError, PowCheck, UtxoEntry, UtxoError, UtxoResult, UtxoStore, UtxoView,
    ValidatedBlock,
};
use bystack_engine::{Block, Hash};

use crate::store::{KvStore, Store, StoreBatch, StoreError, Undo};

pub use index::{replaces_tip, BlockIndex, BlockNode, IndexError};
pub use orphan::OrphanPool;

/// Why the chain manager refused a block or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Block validation rejected the block (header, proof of work, transactions, coinbase,
    /// merkle roots).
    #[error("block {hash} is invalid: {error}")]
    Block {
        /// The block.
        hash: Hash,
        /// The engine's verdict.
        #[source]
        error: BlockError,
    },
    /// The block's spends do not connect to the UTXO set (missing, spent or immature
    /// outputs).
    #[error("block {hash} does not connect: {error}")]
    Utxo {
        /// The block.
        hash: Hash,
        /// The engine's verdict.
        #[source]
        error: UtxoError,
    },
    /// The block was rejected before.
    #[error("block {hash} was rejected before")]
    KnownInvalid {
        /// The block.
        hash: Hash,
    },
    /// The block descends from a rejected block.
    #[error("block {hash} descends from rejected block {ancestor}")]
    InvalidAncestor {
        /// The block.
        hash: Hash,
        /// The rejected ancestor.
        ancestor: Hash,
    },
    /// The database holds another network's chain.
    #[error("the database holds genesis {stored}, this network's is {expected}")]
    GenesisMismatch {
        /// The stored genesis hash.
        stored: Hash,
        /// The expected one.
        expected: Hash,
    },
    /// The database failed, or contradicts itself.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Result alias for the chain manager.
pub type ChainResult<T> = Result<T, ChainError>;

impl From<IndexError> for ChainError {
    fn from(e: IndexError) -> Self {
        ChainError::Store(StoreError::Inconsistent {
            reason: e.to_string(),
        })
    }
}

/// A UTXO error of `hash`: the block's fault, unless the store failed.
fn utxo_error(hash: Hash, error: UtxoError) -> ChainError {
    match error {
        UtxoError::Store { message } => ChainError::Store(StoreError::Backend { message }),
        error => ChainError::Utxo { hash, error },
    }
}

/// A UTXO error while replaying blocks this node already accepted: the database is at fault.
fn replay_error(hash: Hash, error: UtxoError) -> ChainError {
    match error {
        UtxoError::Store { message } => ChainError::Store(StoreError::Backend { message }),
        error => ChainError::Store(StoreError::Inconsistent {
            reason: format!("replaying accepted block {hash}: {error}"),
        }),
    }
}

/// The local clock in Unix seconds, for the "at most an hour ahead" timestamp rule.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Chain manager settings.
#[derive(Clone)]
pub struct ChainConfig {
    /// Orphan blocks kept at most (Bytom: 256).
    pub max_orphans: usize,
    /// Rejected block hashes remembered at most.
    pub max_invalid: usize,
    /// The validation clock.
    pub clock: Clock,
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("max_orphans", &self.max_orphans)
            .field("max_invalid", &self.max_invalid)
            .finish_non_exhaustive()
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            max_orphans: 256,
            max_invalid: 4096,
            clock: system_clock(),
        }
    }
}

impl ChainConfig {
    /// The defaults with a clock stopped at `now` (tests, replays of old chains).
    pub fn with_fixed_clock(now: u64) -> Self {
        ChainConfig {
            clock: Arc::new(move || now),
            ..ChainConfig::default()
        }
    }
}

/// The main chain's tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
}

/// What became of a block given to [`Chain::process_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// It is on the main chain now (it extended the tip, or its branch won).
    MainChain,
    /// Stored on a side branch that does not (yet) outweigh the main chain.
    SideChain,
    /// Its parent is unknown: held in the orphan pool.
    Orphan,
    /// Already indexed or already an orphan: nothing done.
    AlreadyKnown,
}

/// The result of [`Chain::process_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutcome {
    /// What became of the block.
    pub status: BlockStatus,
    /// The tip afterwards.
    pub tip: Tip,
    /// Blocks taken off the main chain, newest first (the mempool re-admits their
    /// transactions).
    pub detached: Vec<Hash>,
    /// Blocks put on the main chain, in order (the mempool drops their transactions).
    pub attached: Vec<Hash>,
    /// Orphans that the block made connectable and that were then rejected.
    pub orphans_rejected: Vec<ChainError>,
}

/// The result of [`Chain::process_window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowReport {
    /// How many blocks of the window were accepted (a prefix).
    pub accepted: usize,
    /// The first rejected block's index in the window and why; the blocks after it are not
    /// looked at.
    pub rejected: Option<(usize, ChainError)>,
    /// The tip afterwards.
    pub tip: Tip,
    /// Blocks taken off the main chain (only when the window did not extend the tip and went
    /// block by block).
    pub detached: Vec<Hash>,
    /// Blocks put on the main chain, in order.
    pub attached: Vec<Hash>,
}

/// Rejected block hashes, bounded, oldest forgotten first.
#[derive(Debug, Clone)]
struct InvalidSet {
    max: usize,
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl InvalidSet {
    fn new(max: usize) -> Self {
        InvalidSet {
            max: max.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, hash: &Hash) -> bool {
        self.set.contains(hash)
    }

    fn insert(&mut self, hash: Hash) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            while self.order.len() > self.max {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// The view entry that [`UtxoView::writes`] turns into a delete.
const DELETED: UtxoEntry = UtxoEntry {
    is_coinbase: false,
    block_height: 0,
    spent: true,
};

/// The entries `block` touches (outputs it spends, outputs it creates) as `reader` holds them
/// before it; `view` holds the spent outputs already loaded from `reader`.
fn undo_of(block: &Block, view: &UtxoView, reader: &dyn UtxoStore) -> UtxoResult<Undo> {
    let mut seen = HashSet::new();
    let mut undo = Vec::new();
    for tx in &block.transactions {
        for id in &tx.mapped.spent_output_ids {
            if seen.insert(*id) {
                undo.push((*id, view.get(id).copied()));
            }
        }
    }
    for tx in &block.transactions {
        for result in &tx.mapped.results {
            if result.kind == EntryType::Output && seen.insert(result.id) {
                undo.push((result.id, reader.get(&result.id)?));
            }
        }
    }
    Ok(undo)
}

/// Connects `block` on top of `reader` in a fresh view (Bytom's per-block `connectBlock`) and
/// returns the view and the block's undo data.
fn connect(
    block: &Block,
    status_fail: &[bool],
    reader: &dyn UtxoStore,
) -> UtxoResult<(UtxoView, Undo)> {
    let mut view = UtxoView::new();
    view.load_for_block(reader, block)?;
    let undo = undo_of(block, &view, reader)?;
    view.apply_block_with_status(block, status_fail)?;
    Ok((view, undo))
}

/// Detaches `block` from the state `reader` holds (it must be that state's last block): the
/// engine's detach, then the entries it touched as `undo` recorded them.
fn disconnect(
    block: &Block,
    status_fail: &[bool],
    undo: &Undo,
    reader: &dyn UtxoStore,
) -> UtxoResult<UtxoView> {
    let mut view = UtxoView::new();
    view.load_for_block(reader, block)?;
    view.detach_block(block, status_fail)?;
    for (id, entry) in undo {
        view.insert(*id, entry.unwrap_or(DELETED));
    }
    Ok(view)
}

/// The chain manager over a [`Store`].
pub struct Chain<K: KvStore> {
    store: Store<K>,
    index: BlockIndex,
    orphans: OrphanPool,
    invalid: InvalidSet,
    pow: Arc<dyn PowCheck + Send + Sync>,
    config: ChainConfig,
    genesis: Hash,
}

impl<K: KvStore> std::fmt::Debug for Chain<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("tip", &self.tip())
            .field("indexed", &self.index.len())
            .field("orphans", &self.orphans.len())
            .finish_non_exhaustive()
    }
}

impl<K: KvStore> Chain<K> {
    /// Opens the chain in `store`: an empty database gets `genesis` (its block, its outputs,
    /// the tip) in one batch; otherwise the block index is rebuilt from the stored headers and
    /// the stored tip restored, after checking that the stored main chain is the tip's
    /// ancestry. `pow` checks every new block's proof of work.
    ///
    /// # Errors
    /// [`ChainError::GenesisMismatch`] for another network's database;
    /// [`ChainError::Store`] when the database fails, holds undecodable records or
    /// contradicts itself.
    pub fn open(
        store: Store<K>,
        genesis: &Block,
        pow: Arc<dyn PowCheck + Send + Sync>,
        config: ChainConfig,
    ) -> ChainResult<Self> {
        store.check_version()?;
        let genesis_hash = genesis.hash();
        if store.is_empty()? {
            Self::init(&store, genesis, &genesis_hash)?;
        }
        let index = Self::rebuild_index(&store, genesis, &genesis_hash)?;
        Ok(Chain {
            store,
            index,
            orphans: OrphanPool::new(config.max_orphans),
            invalid: InvalidSet::new(config.max_invalid),
            pow,
            config,
            genesis: genesis_hash,
        })
    }

    fn init(store: &Store<K>, genesis: &Block, hash: &Hash) -> ChainResult<()> {
        let statuses = vec![false; genesis.transactions.len()];
        let (view, undo) = connect(genesis, &statuses, store).map_err(|e| utxo_error(*hash, e))?;
        let mut batch = StoreBatch::new();
        batch.put_version();
        batch.put_block(hash, genesis, &statuses)?;
        batch.utxo_writes(&view.writes());
        batch.put_main(genesis.header.height, hash, &undo);
        batch.put_tip(genesis.header.height, hash);
        store.commit(batch)?;
        Ok(())
    }

    fn rebuild_index(
        store: &Store<K>,
        genesis: &Block,
        genesis_hash: &Hash,
    ) -> ChainResult<BlockIndex> {
        let inconsistent = |reason: String| ChainError::Store(StoreError::Inconsistent { reason });
        let headers = store.headers()?;
        let mut headers = headers.into_iter();
        match headers.next() {
            Some((hash, header)) if header.height == 0 => {
                if hash != *genesis_hash {
                    return Err(ChainError::GenesisMismatch {
                        stored: hash,
                        expected: *genesis_hash,
                    });
                }
            }
            _ => return Err(inconsistent("no genesis header".to_string())),
        }
        let mut index = BlockIndex::new(&genesis.header);
        for (hash, header) in headers {
            index.insert(&header, hash)?;
        }
        let tip = store.tip()?.ok_or_else(|| StoreError::Missing {
            what: "tip",
            key: bystack_kernels::hex::encode(&crate::store::Prefix::Tip.key()),
        })?;
        match index.get(&tip.hash) {
            Some(node) if node.height == tip.height => {}
            _ => {
                return Err(inconsistent(format!(
                    "tip {} at height {} is not an indexed block",
                    tip.hash, tip.height
                )))
            }
        }
        index.set_main(&tip.hash)?;
        let stored_main = store.main_chain()?;
        let main = index.main_chain();
        if stored_main.len() != main.len()
            || stored_main
                .iter()
                .zip(main)
                .enumerate()
                .any(|(h, (&(height, hash), expected))| height != h as u64 || hash != *expected)
        {
            return Err(inconsistent(format!(
                "stored main chain ({} entries) is not the ancestry of tip {} at height {}",
                stored_main.len(),
                tip.hash,
                tip.height
            )));
        }
        Ok(index)
    }

    /// The database.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// The genesis block's hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis
    }

    /// The main chain's tip.
    pub fn tip(&self) -> Tip {
        let node = self.index.tip();
        Tip {
            height: node.height,
            hash: node.hash,
        }
    }

    /// How many orphans are held.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether `hash` is a known orphan.
    pub fn is_orphan(&self, hash: &Hash) -> bool {
        self.orphans.contains(hash)
    }

    /// Whether `hash` was rejected (and is still remembered).
    pub fn is_known_invalid(&self, hash: &Hash) -> bool {
        self.invalid.contains(hash)
    }

    /// The digest of the stored UTXO set ([`crate::store::utxo_digest`]).
    ///
    /// # Errors
    /// [`ChainError::Store`].
    pub fn utxo_digest(&self) -> ChainResult<Hash> {
        Ok(self.store.utxo_digest()?)
    }

    /// The validation clock's current time (Unix seconds): block templates take their
    /// timestamp from it, so that they pass the "at most an hour ahead" rule of this chain.
    pub fn now(&self) -> u64 {
        (self.config.clock)()
    }

    /// Processes one block (relayed, mined or fetched near the tip), as Bytom's
    /// `ProcessBlock`: unknown parent → orphan pool; otherwise the block is validated against
    /// its parent with the sequential path and then connected to the tip, stored on a side
    /// branch, or makes its branch the main chain by a reorganisation. Orphans waiting for it
    /// are then processed the same way.
    ///
    /// # Errors
    /// [`ChainError::Block`] / [`ChainError::Utxo`] with the engine's typed error when the
    /// block is invalid (nothing is stored, the state is unchanged, and the hash is
    /// remembered as invalid), [`ChainError::KnownInvalid`] / [`ChainError::InvalidAncestor`]
    /// for blocks rejected before or built on them, [`ChainError::Store`] when the database
    /// fails (the state is then the last committed one).
    pub fn process_block(&mut self, block: Block) -> ChainResult<ProcessOutcome> {
        let hash = block.hash();
        let mut outcome = ProcessOutcome {
            status: BlockStatus::AlreadyKnown,
            tip: self.tip(),
            detached: Vec::new(),
            attached: Vec::new(),
            orphans_rejected: Vec::new(),
        };
        if self.index.contains(&hash) || self.orphans.contains(&hash) {
            return Ok(outcome);
        }
        self.check_not_invalid(&hash, &block.header.previous_block_hash)?;
        if !self.index.contains(&block.header.previous_block_hash) {
            self.orphans.insert(hash, block);
            outcome.status = BlockStatus::Orphan;
            return Ok(outcome);
        }
        outcome.status = self.accept(block, hash, &mut outcome)?;
        self.adopt_orphans(hash, &mut outcome);
        outcome.tip = self.tip();
        Ok(outcome)
    }

    fn check_not_invalid(&mut self, hash: &Hash, parent: &Hash) -> ChainResult<()> {
        if self.invalid.contains(hash) {
            return Err(ChainError::KnownInvalid { hash: *hash });
        }
        if self.invalid.contains(parent) {
            self.invalid.insert(*hash);
            return Err(ChainError::InvalidAncestor {
                hash: *hash,
                ancestor: *parent,
            });
        }
        Ok(())
    }

    /// Processes the orphans that descend from `parent`, breadth first.
    fn adopt_orphans(&mut self, parent: Hash, outcome: &mut ProcessOutcome) {
        let mut queue = VecDeque::from([parent]);
        while let Some(parent) = queue.pop_front() {
            for (hash, block) in self.orphans.take_children(&parent) {
                if self.index.contains(&hash) {
                    continue;
                }
                if let Err(e) = self
                    .check_not_invalid(&hash, &parent)
                    .and_then(|()| self.accept(block, hash, outcome))
                {
                    outcome.orphans_rejected.push(e);
                    if !matches!(outcome.orphans_rejected.last(), Some(ChainError::Store(_))) {
                        self.reject_orphan_descendants(hash, outcome);
                    }
                    continue;
                }
                queue.push_back(hash);
            }
        }
    }

    /// Drops the orphans that descend from the rejected block `rejected`.
    fn reject_orphan_descendants(&mut self, rejected: Hash, outcome: &mut ProcessOutcome) {
        let mut queue = VecDeque::from([rejected]);
        while let Some(ancestor) = queue.pop_front() {
            for (hash, _) in self.orphans.take_children(&ancestor) {
                self.invalid.insert(hash);
                outcome
                    .orphans_rejected
                    .push(ChainError::InvalidAncestor { hash, ancestor });
                queue.push_back(hash);
            }
        }
    }

    /// Validates a block whose parent is indexed and connects it, stores it on its side
    /// branch, or reorganises to its branch.
    fn accept(
        &mut self,
        block: Block,
        hash: Hash,
        outcome: &mut ProcessOutcome,
    ) -> ChainResult<BlockStatus> {
        let parent = self.index.parent_info(&block.header.previous_block_hash)?;
        let validated = match validate_block(&block, &parent, self.now(), &*self.pow) {
            Ok(v) => v,
            Err(BlockError::PowBackend { message }) => {
                // The verifier failed, not the block: do not remember it as invalid.
                return Err(ChainError::Block {
                    hash,
                    error: BlockError::PowBackend { message },
                });
            }
            Err(error) => {
                self.invalid.insert(hash);
                return Err(ChainError::Block { hash, error });
            }
        };
        if block.header.previous_block_hash == self.index.tip().hash {
            self.connect_tip(&validated, hash)?;
            outcome.attached.push(hash);
            return Ok(BlockStatus::MainChain);
        }
        let parent_node =
            self.index
                .get(&block.header.previous_block_hash)
                .ok_or(IndexError::Unknown {
                    hash: block.header.previous_block_hash,
                })?;
        let work = &parent_node.work + bystack_engine::pow::calc_work(block.header.bits);
        if !replaces_tip(block.header.height, &work, self.index.tip()) {
            let mut batch = StoreBatch::new();
            batch.put_block(&hash, &block, validated.status_fail())?;
            self.store.commit(batch)?;
            self.index.insert(&block.header, hash)?;
            return Ok(BlockStatus::SideChain);
        }
        self.index.insert(&block.header, hash)?;
        let pending = (hash, validated);
        match self.reorganize(hash, Some(&pending), outcome) {
            Ok(()) => Ok(BlockStatus::MainChain),
            Err(e) => {
                // The block is not stored: take it out of the index again (a no-op when the
                // failure pruned it already).
                self.index.remove_subtree(&hash);
                Err(e)
            }
        }
    }

    /// Connects a validated child of the tip: one batch with the block, its UTXO writes,
    /// undo data, main-chain entry and the tip.
    fn connect_tip(&mut self, validated: &ValidatedBlock, hash: Hash) -> ChainResult<()> {
        let block = validated.block();
        let (view, undo) = match connect(block, validated.status_fail(), &self.store) {
            Ok(done) => done,
            Err(e) => {
                let e = utxo_error(hash, e);
                if matches!(e, ChainError::Utxo { .. }) {
                    self.invalid.insert(hash);
                }
                return Err(e);
            }
        };
        let height = block.header.height;
        let mut batch = StoreBatch::new();
        batch.put_block(&hash, block, validated.status_fail())?;
        batch.utxo_writes(&view.writes());
        batch.put_main(height, &hash, &undo);
        batch.put_tip(height, &hash);
        self.store.commit(batch)?;
        self.index.insert(&block.header, hash)?;
        self.index.set_main(&hash)?;
        Ok(())
    }

    /// Makes the branch ending at `target` (indexed) the main chain in one batch. `pending`
    /// is `target` itself when it is validated but not stored yet (it is stored in the same
    /// batch). When a block of the branch does not connect, it and its descendants are
    /// rejected and removed, the next best branch is tried, and the first error returned.
    fn reorganize(
        &mut self,
        target: Hash,
        pending: Option<&(Hash, ValidatedBlock)>,
        outcome: &mut ProcessOutcome,
    ) -> ChainResult<()> {
        let mut target = target;
        let mut pending = pending;
        let mut first_error = None;
        loop {
            match self.try_reorganize(target, pending, outcome) {
                Ok(()) => break,
                Err(failure) => {
                    let (failed, error) = *failure;
                    let ChainError::Utxo { .. } = error else {
                        return Err(error);
                    };
                    self.reject_branch(&failed)?;
                    first_error.get_or_insert(error);
                    pending = None;
                    let best = self.index.best_candidate().hash;
                    if best == self.index.tip().hash {
                        break;
                    }
                    target = best;
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes the stored side block `hash` and its descendants (database and index) and
    /// remembers them as invalid.
    fn reject_branch(&mut self, hash: &Hash) -> ChainResult<()> {
        let removed = self.index.remove_subtree(hash);
        let mut batch = StoreBatch::new();
        for (height, h) in &removed {
            batch.delete_block(*height, h);
            self.invalid.insert(*h);
        }
        self.store.commit(batch)?;
        Ok(())
    }

    /// One attempt of [`Chain::reorganize`]; on a block that does not connect, returns it
    /// with the error and writes nothing.
    fn try_reorganize(
        &mut self,
        target: Hash,
        pending: Option<&(Hash, ValidatedBlock)>,
        outcome: &mut ProcessOutcome,
    ) -> Result<(), Box<(Hash, ChainError)>> {
        let old_tip = self.index.tip().hash;
        let internal = |e: ChainError| Box::new((target, e));
        let fork = self
            .index
            .fork_point(&old_tip, &target)
            .map_err(|e| internal(e.into()))?;
        let mut detach = self
            .index
            .branch(&fork, &old_tip)
            .map_err(|e| internal(e.into()))?;
        detach.reverse();
        let attach = self
            .index
            .branch(&fork, &target)
            .map_err(|e| internal(e.into()))?;

        let mut batch = StoreBatch::new();
        let writes = {
            let mut overlay = Overlay::new(&self.store);
            for hash in &detach {
                let (block, statuses) = self.stored_block(hash).map_err(internal)?;
                let undo = self
                    .store
                    .undo(hash)
                    .map_err(|e| internal(e.into()))?
                    .ok_or_else(|| {
                        internal(ChainError::Store(StoreError::Missing {
                            what: "undo data",
                            key: hash.to_hex(),
                        }))
                    })?;
                let view = disconnect(&block, &statuses, &undo, &overlay)
                    .map_err(|e| internal(replay_error(*hash, e)))?;
                view.save(&mut overlay)
                    .map_err(|e| internal(replay_error(*hash, e)))?;
                batch.delete_main(block.header.height, hash);
            }
            for hash in &attach {
                let loaded;
                let (block, statuses) = match pending {
                    Some((h, validated)) if h == hash => {
                        (validated.block(), validated.status_fail())
                    }
                    _ => {
                        loaded = self.stored_block(hash).map_err(internal)?;
                        (&loaded.0, loaded.1.as_slice())
                    }
                };
                let (view, undo) = connect(block, statuses, &overlay)
                    .map_err(|e| Box::new((*hash, utxo_error(*hash, e))))?;
                view.save(&mut overlay)
                    .map_err(|e| internal(replay_error(*hash, e)))?;
                if pending.is_some_and(|(h, _)| h == hash) {
                    batch
                        .put_block(hash, block, statuses)
                        .map_err(|e| internal(e.into()))?;
                }
                batch.put_main(block.header.height, hash, &undo);
            }
            overlay
                .writes()
                .map_err(|e| internal(replay_error(target, e)))?
        };
        batch.utxo_writes(&writes);
        let height = self
            .index
            .get(&target)
            .map(|n| n.height)
            .ok_or_else(|| internal(IndexError::Unknown { hash: target }.into()))?;
        batch.put_tip(height, &target);
        self.store.commit(batch).map_err(|e| internal(e.into()))?;
        self.index
            .set_main(&target)
            .map_err(|e| internal(e.into()))?;
        outcome.detached.extend(detach);
        outcome.attached.extend(attach);
        Ok(())
    }

    /// A stored block with its statuses.
    fn stored_block(&self, hash: &Hash) -> ChainResult<(Block, Vec<bool>)> {
        let missing = |what| {
            ChainError::Store(StoreError::Missing {
                what,
                key: hash.to_hex(),
            })
        };
        let block = self.store.block(hash)?.ok_or_else(|| missing("block"))?;
        let statuses = self
            .store
            .statuses(hash)?
            .ok_or_else(|| missing("tx statuses"))?;
        Ok((block, statuses))
    }

    /// Validates and commits a sync window with PSWV: `blocks` must start at a child of the
    /// tip and be linked; the valid prefix is committed in ONE batch (blocks, statuses, undo
    /// data, main-chain entries, the window's UTXO writes, the tip), and the first invalid
    /// block is reported with the engine's typed error. A window that does not start at the
    /// tip, or holds known blocks, goes block by block through [`Chain::process_block`].
    ///
    /// # Errors
    /// [`ChainError::Store`] when the database fails (nothing of the window is then
    /// committed). Invalid blocks are not errors of the call: see
    /// [`WindowReport::rejected`].
    pub fn process_window(&mut self, blocks: &[Block]) -> ChainResult<WindowReport> {
        let tip = self.index.tip().hash;
        let hashes: Vec<Hash> = blocks.iter().map(Block::hash).collect();
        let starts_at_tip = blocks
            .first()
            .is_some_and(|b| b.header.previous_block_hash == tip);
        if !starts_at_tip
            || hashes
                .iter()
                .any(|h| self.index.contains(h) || self.invalid.contains(h))
        {
            return self.process_one_by_one(blocks);
        }
        let context = self.index.chain_context(&tip)?;
        let result = validate_window(blocks, &self.store, &context, self.now(), &*self.pow);
        let statuses = result.outcome.statuses;
        let accepted = statuses.len();

        let mut batch = StoreBatch::new();
        {
            // Undo data per block: the entries each block touches as they are before it.
            let mut overlay = Overlay::new(&self.store);
            for ((block, hash), status) in blocks.iter().zip(&hashes).zip(&statuses) {
                let (view, undo) =
                    connect(block, status, &overlay).map_err(|e| replay_error(*hash, e))?;
                view.save(&mut overlay)
                    .map_err(|e| replay_error(*hash, e))?;
                batch.put_block(hash, block, status)?;
                batch.put_main(block.header.height, hash, &undo);
            }
        }
        if accepted > 0 {
            let last = &blocks[accepted - 1];
            batch.utxo_writes(&result.writes);
            batch.put_tip(last.header.height, &hashes[accepted - 1]);
            self.store.commit(batch)?;
            for (block, hash) in blocks.iter().zip(&hashes).take(accepted) {
                self.index.insert(&block.header, *hash)?;
            }
            self.index.set_main(&hashes[accepted - 1])?;
        }
        let rejected = match result.outcome.failure {
            None => None,
            Some(failure) => {
                let hash = hashes[failure.index];
                let error = match failure.error {
                    WindowError::Block(BlockError::PowBackend { message }) => ChainError::Block {
                        hash,
                        error: BlockError::PowBackend { message },
                    },
                    WindowError::Block(error) => {
                        self.invalid.insert(hash);
                        ChainError::Block { hash, error }
                    }
                    WindowError::Utxo(error) => {
                        let e = utxo_error(hash, error);
                        if matches!(e, ChainError::Utxo { .. }) {
                            self.invalid.insert(hash);
                        }
                        e
                    }
                    WindowError::MissingAncestor { height } => {
                        ChainError::Store(StoreError::Inconsistent {
                            reason: format!("no timestamp for retarget height {height}"),
                        })
                    }
                };
                Some((failure.index, error))
            }
        };
        let mut outcome = ProcessOutcome {
            status: BlockStatus::MainChain,
            tip: self.tip(),
            detached: Vec::new(),
            attached: hashes[..accepted].to_vec(),
            orphans_rejected: Vec::new(),
        };
        if accepted > 0 {
            self.adopt_orphans(hashes[accepted - 1], &mut outcome);
        }
        Ok(WindowReport {
            accepted,
            rejected,
            tip: self.tip(),
            detached: outcome.detached,
            attached: outcome.attached,
        })
    }

    fn process_one_by_one(&mut self, blocks: &[Block]) -> ChainResult<WindowReport> {
        let mut report = WindowReport {
            accepted: 0,
            rejected: None,
            tip: self.tip(),
            detached: Vec::new(),
            attached: Vec::new(),
        };
        for (i, block) in blocks.iter().enumerate() {
            match self.process_block(block.clone()) {
                Ok(outcome) => {
                    report.accepted += 1;
                    report.detached.extend(outcome.detached);
                    report.attached.extend(outcome.attached);
                }
                Err(ChainError::Store(e)) => return Err(ChainError::Store(e)),
                Err(e) => {
                    report.rejected = Some((i, e));
                    break;
                }
            }
        }
        report.tip = self.tip();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{utxo_digest, MemoryKv};
    use bystack_engine::devnet::{genesis_store, ChainGenerator, GeneratorConfig};
    use bystack_engine::pswv::{sequential, ChainContext};
    use bystack_engine::validation::SkipPow;

    const NOW: u64 = 4_000_000_000;

    fn memory_chain(genesis: &Block) -> Chain<MemoryKv> {
        Chain::open(
            Store::in_memory(),
            genesis,
            Arc::new(SkipPow),
            ChainConfig::with_fixed_clock(NOW),
        )
        .unwrap()
    }

    fn engine_digest(genesis: &Block, blocks: &[Block]) -> Hash {
        let mut store = genesis_store(genesis);
        let context = ChainContext::genesis(genesis);
        let outcome = sequential::validate_and_apply(blocks, &mut store, &context, NOW, &SkipPow);
        assert!(outcome.failure.is_none());
        utxo_digest(store.entries())
    }

    /// The whole manager on the in-memory backend (no RocksDB needed): windows, a side
    /// block, a tie that does not switch, and a reorganisation by a longer branch of the
    /// same generator under another seed's coinbases.
    #[test]
    fn windows_side_blocks_and_a_reorg_on_the_memory_backend() {
        let mut a = ChainGenerator::new(GeneratorConfig {
            seed: 1,
            txs_per_block: 0,
            ..GeneratorConfig::default()
        });
        let genesis = a.genesis().clone();
        let mut b = a.clone();
        let main: Vec<Block> = a.generate(3).into_iter().map(|g| g.block).collect();
        let mut chain = memory_chain(&genesis);
        let report = chain.process_window(&main).unwrap();
        assert_eq!((report.accepted, report.rejected), (3, None));
        assert_eq!(chain.utxo_digest().unwrap(), engine_digest(&genesis, &main));

        // A branch from genesis: same generator state, coinbases re-labelled by a later
        // timestamp so that every block differs.
        let mut branch: Vec<Block> = Vec::new();
        for g in b.generate(4) {
            let mut block = g.block;
            block.header.timestamp += 1;
            block.header.previous_block_hash = branch.last().map_or(genesis.hash(), Block::hash);
            branch.push(block);
        }
        for block in &branch[..3] {
            let outcome = chain.process_block(block.clone()).unwrap();
            assert_eq!(outcome.status, BlockStatus::SideChain);
        }
        assert_eq!(chain.tip().hash, main[2].hash());
        let outcome = chain.process_block(branch[3].clone()).unwrap();
        assert_eq!(outcome.status, BlockStatus::MainChain);
        assert_eq!(outcome.detached.len(), 3);
        assert_eq!(outcome.attached.len(), 4);
        assert_eq!(
            chain.utxo_digest().unwrap(),
            engine_digest(&genesis, &branch)
        );
    }
}
