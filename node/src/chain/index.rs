//! The block index (Bytom's `state.BlockIndex`): every stored block's header facts with the
//! cumulative work of its chain, and the main chain by height. It answers what a child of any
//! block is validated against ([`ParentInfo`], or a [`ChainContext`] for a PSWV window) and
//! where two branches meet.

use std::collections::{BTreeMap, HashMap};

use bystack_engine::consensus::{
    initial_seed, median_time_past, next_bits, next_seed, BLOCKS_PER_RETARGET, MEDIAN_TIME_BLOCKS,
};
use bystack_engine::pow::calc_work;
use bystack_engine::pswv::ChainContext;
use bystack_engine::validation::ParentInfo;
use bystack_engine::{BlockHeader, Hash};
use num_bigint::BigUint;

/// One block of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockNode {
    /// The block's hash.
    pub hash: Hash,
    /// The parent's hash (`None` for the genesis block).
    pub parent: Option<Hash>,
    /// Height.
    pub height: u64,
    /// Header timestamp.
    pub timestamp: u64,
    /// Header bits.
    pub bits: u64,
    /// The seed the block was mined against.
    pub seed: Hash,
    /// The work of the chain from genesis to this block, inclusive (Σ `calc_work(bits)`).
    pub work: BigUint,
}

/// Why a header cannot join the index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Its parent is not indexed.
    #[error("parent {parent} of block {hash} is not in the index")]
    UnknownParent {
        /// The block.
        hash: Hash,
        /// Its parent.
        parent: Hash,
    },
    /// Its height is not its parent's plus one.
    #[error("block {hash} at height {height} has a parent at height {parent_height}")]
    BadHeight {
        /// The block.
        hash: Hash,
        /// Its height.
        height: u64,
        /// The parent's height.
        parent_height: u64,
    },
    /// A block the operation needs is not indexed.
    #[error("block {hash} is not in the index")]
    Unknown {
        /// The block.
        hash: Hash,
    },
}

/// The index: nodes by hash, children by parent, the main chain by height.
#[derive(Debug, Clone)]
pub struct BlockIndex {
    nodes: HashMap<Hash, BlockNode>,
    children: HashMap<Hash, Vec<Hash>>,
    main: Vec<Hash>,
    /// `calc_work` of the last bits seen (bits change once per 2016 blocks at most).
    work_memo: (u64, BigUint),
}

impl BlockIndex {
    /// An index holding only `genesis` (mined against the initial seed), which is the tip.
    pub fn new(genesis: &BlockHeader) -> Self {
        let hash = genesis.hash();
        let work = calc_work(genesis.bits);
        let node = BlockNode {
            hash,
            parent: None,
            height: genesis.height,
            timestamp: genesis.timestamp,
            bits: genesis.bits,
            seed: initial_seed(),
            work: work.clone(),
        };
        BlockIndex {
            nodes: HashMap::from([(hash, node)]),
            children: HashMap::new(),
            main: vec![hash],
            work_memo: (genesis.bits, work),
        }
    }

    /// How many blocks are indexed.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never empty: the genesis block is always indexed.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node of `hash`.
    pub fn get(&self, hash: &Hash) -> Option<&BlockNode> {
        self.nodes.get(hash)
    }

    /// Whether `hash` is indexed.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.nodes.contains_key(hash)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &BlockNode> {
        self.nodes.values()
    }

    /// The main chain's tip.
    pub fn tip(&self) -> &BlockNode {
        // `main` always holds at least the genesis block, and every main hash is indexed.
        &self.nodes[&self.main[self.main.len() - 1]]
    }

    /// The main chain's block hash at `height`.
    pub fn main_hash(&self, height: u64) -> Option<Hash> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.main.get(h))
            .copied()
    }

    /// The main chain, genesis first.
    pub fn main_chain(&self) -> &[Hash] {
        &self.main
    }

    /// Whether `hash` is on the main chain.
    pub fn is_main(&self, hash: &Hash) -> bool {
        self.nodes
            .get(hash)
            .is_some_and(|n| self.main_hash(n.height) == Some(*hash))
    }

    fn work_of(&mut self, bits: u64) -> BigUint {
        if self.work_memo.0 != bits {
            self.work_memo = (bits, calc_work(bits));
        }
        self.work_memo.1.clone()
    }

    /// Adds `header` (hash `hash`) under its parent; not on the main chain. Adding a block
    /// twice changes nothing.
    ///
    /// # Errors
    /// [`IndexError::UnknownParent`], [`IndexError::BadHeight`].
    pub fn insert(&mut self, header: &BlockHeader, hash: Hash) -> Result<&BlockNode, IndexError> {
        if self.nodes.contains_key(&hash) {
            return Ok(&self.nodes[&hash]);
        }
        let parent_hash = header.previous_block_hash;
        let parent = self
            .nodes
            .get(&parent_hash)
            .ok_or(IndexError::UnknownParent {
                hash,
                parent: parent_hash,
            })?;
        if Some(header.height) != parent.height.checked_add(1) {
            return Err(IndexError::BadHeight {
                hash,
                height: header.height,
                parent_height: parent.height,
            });
        }
        let seed = next_seed(parent.height, &parent.hash, &parent.seed);
        let parent_work = parent.work.clone();
        let work = parent_work + self.work_of(header.bits);
        self.children.entry(parent_hash).or_default().push(hash);
        let node = BlockNode {
            hash,
            parent: Some(parent_hash),
            height: header.height,
            timestamp: header.timestamp,
            bits: header.bits,
            seed,
            work,
        };
        Ok(self.nodes.entry(hash).or_insert(node))
    }

    /// The ancestor of `hash` at `height` (itself at its own height).
    pub fn ancestor(&self, hash: &Hash, height: u64) -> Option<&BlockNode> {
        let mut node = self.nodes.get(hash)?;
        if height > node.height {
            return None;
        }
        loop {
            if node.height == height {
                return Some(node);
            }
            if self.main_hash(node.height) == Some(node.hash) {
                // On the main chain: jump.
                return self.main_hash(height).and_then(|h| self.nodes.get(&h));
            }
            node = self.nodes.get(&node.parent?)?;
        }
    }

    /// The timestamps of `hash` and up to `count − 1` ancestors, newest first.
    fn recent_timestamps(&self, hash: &Hash, count: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = self.nodes.get(hash);
        while let Some(node) = cursor {
            if out.len() == count {
                break;
            }
            out.push(node.timestamp);
            cursor = node.parent.and_then(|p| self.nodes.get(&p));
        }
        out
    }

    /// What a child of `hash` is validated against (`CalcNextBits`, the median time past,
    /// `CalcNextSeed`).
    ///
    /// # Errors
    /// [`IndexError::Unknown`] when `hash`, or the ancestor the retarget rule reads, is not
    /// indexed.
    pub fn parent_info(&self, hash: &Hash) -> Result<ParentInfo, IndexError> {
        let node = self
            .nodes
            .get(hash)
            .ok_or(IndexError::Unknown { hash: *hash })?;
        let ancestor_timestamp =
            if node.height != 0 && node.height.is_multiple_of(BLOCKS_PER_RETARGET) {
                self.ancestor(hash, node.height - BLOCKS_PER_RETARGET)
                    .ok_or(IndexError::Unknown { hash: *hash })?
                    .timestamp
            } else {
                node.timestamp
            };
        let recent = self.recent_timestamps(hash, MEDIAN_TIME_BLOCKS);
        Ok(ParentInfo {
            height: node.height,
            hash: node.hash,
            bits_expected: next_bits(node.height, node.timestamp, node.bits, ancestor_timestamp),
            median_time: median_time_past(&recent).unwrap_or(node.timestamp),
            seed: next_seed(node.height, &node.hash, &node.seed),
        })
    }

    /// The PSWV context of a window whose first block is a child of `hash`.
    ///
    /// # Errors
    /// As [`BlockIndex::parent_info`].
    pub fn chain_context(&self, hash: &Hash) -> Result<ChainContext, IndexError> {
        let parent = self.parent_info(hash)?;
        let recent = self.recent_timestamps(hash, MEDIAN_TIME_BLOCKS);
        // A window block at a multiple of 2016 above `hash` reads the timestamp 2016 blocks
        // before it: the last retarget height at or below `hash` is the only one not inside
        // the window (the context records the others as it advances).
        let last_retarget = parent.height / BLOCKS_PER_RETARGET * BLOCKS_PER_RETARGET;
        let retarget = match self.ancestor(hash, last_retarget) {
            Some(node) => BTreeMap::from([(last_retarget, node.timestamp)]),
            None => BTreeMap::new(),
        };
        Ok(ChainContext::new(parent, &recent, retarget))
    }

    /// The last common block of the branches ending at `a` and `b`.
    ///
    /// # Errors
    /// [`IndexError::Unknown`] when a block of either branch is not indexed.
    pub fn fork_point(&self, a: &Hash, b: &Hash) -> Result<Hash, IndexError> {
        let node = |h: &Hash| self.nodes.get(h).ok_or(IndexError::Unknown { hash: *h });
        let (mut x, mut y) = (node(a)?, node(b)?);
        while x.hash != y.hash {
            if x.height >= y.height {
                x = node(&x.parent.ok_or(IndexError::Unknown { hash: x.hash })?)?;
            } else {
                y = node(&y.parent.ok_or(IndexError::Unknown { hash: y.hash })?)?;
            }
        }
        Ok(x.hash)
    }

    /// The blocks after `ancestor` up to `hash`, in height order.
    ///
    /// # Errors
    /// [`IndexError::Unknown`] when `ancestor` is not an ancestor of `hash`.
    pub fn branch(&self, ancestor: &Hash, hash: &Hash) -> Result<Vec<Hash>, IndexError> {
        let mut out = Vec::new();
        let mut cursor = *hash;
        while cursor != *ancestor {
            let node = self
                .nodes
                .get(&cursor)
                .ok_or(IndexError::Unknown { hash: cursor })?;
            out.push(cursor);
            cursor = node.parent.ok_or(IndexError::Unknown { hash: *ancestor })?;
        }
        out.reverse();
        Ok(out)
    }

    /// Makes the chain ending at `hash` the main chain.
    ///
    /// # Errors
    /// [`IndexError::Unknown`] when `hash` or one of its ancestors is not indexed.
    pub fn set_main(&mut self, hash: &Hash) -> Result<(), IndexError> {
        let mut path = Vec::new();
        let mut cursor = *hash;
        loop {
            let node = self
                .nodes
                .get(&cursor)
                .ok_or(IndexError::Unknown { hash: cursor })?;
            if self.main_hash(node.height) == Some(cursor) {
                break;
            }
            path.push(cursor);
            match node.parent {
                Some(p) => cursor = p,
                // A second genesis cannot be indexed: `insert` needs a parent.
                None => return Err(IndexError::Unknown { hash: cursor }),
            }
        }
        let fork_height = self.nodes[&cursor].height as usize;
        self.main.truncate(fork_height + 1);
        self.main.extend(path.into_iter().rev());
        Ok(())
    }

    /// Removes `hash` and every block descending from it (never the main chain's blocks:
    /// the caller removes side branches only). Returns the removed `(height, hash)` pairs.
    pub fn remove_subtree(&mut self, hash: &Hash) -> Vec<(u64, Hash)> {
        let mut removed = Vec::new();
        let Some(node) = self.nodes.get(hash) else {
            return removed;
        };
        if let Some(parent) = node.parent {
            if let Some(siblings) = self.children.get_mut(&parent) {
                siblings.retain(|h| h != hash);
            }
        }
        let mut stack = vec![*hash];
        while let Some(h) = stack.pop() {
            if let Some(node) = self.nodes.remove(&h) {
                removed.push((node.height, h));
            }
            if let Some(children) = self.children.remove(&h) {
                stack.extend(children);
            }
        }
        removed
    }

    /// The block that Bytom's fork choice would make the tip among every indexed block: the
    /// current tip unless some block is higher with at least the tip's work; among those,
    /// the most work, then the greatest height.
    pub fn best_candidate(&self) -> &BlockNode {
        let tip = self.tip();
        self.nodes
            .values()
            .filter(|n| n.height > tip.height && n.work >= tip.work)
            .max_by(|a, b| (&a.work, a.height).cmp(&(&b.work, b.height)))
            .unwrap_or(tip)
    }
}

/// Bytom's fork choice: whether a block at `height` with cumulative work `work` replaces the
/// tip (higher **and** at least as much work).
pub fn replaces_tip(height: u64, work: &BigUint, tip: &BlockNode) -> bool {
    height > tip.height && *work >= tip.work
}
