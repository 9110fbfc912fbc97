//! Blocks whose parent is not known yet (Bytom's `OrphanManage`), bounded in count: when full,
//! the oldest orphan goes.

use std::collections::{HashMap, VecDeque};

use bystack_engine::{Block, Hash};

/// The orphan pool.
#[derive(Debug, Clone)]
pub struct OrphanPool {
    max: usize,
    blocks: HashMap<Hash, Block>,
    by_parent: HashMap<Hash, Vec<Hash>>,
    /// Insertion order, for eviction; may hold hashes already taken out.
    order: VecDeque<Hash>,
}

impl OrphanPool {
    /// A pool of at most `max` blocks (at least 1).
    pub fn new(max: usize) -> Self {
        OrphanPool {
            max: max.max(1),
            blocks: HashMap::new(),
            by_parent: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// How many orphans are held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Adds `block` (hash `hash`), evicting the oldest orphan when full. Returns false if it
    /// was already held.
    pub fn insert(&mut self, hash: Hash, block: Block) -> bool {
        if self.blocks.contains_key(&hash) {
            return false;
        }
        while self.blocks.len() >= self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.remove(&old);
                }
                None => break,
            }
        }
        self.by_parent
            .entry(block.header.previous_block_hash)
            .or_default()
            .push(hash);
        self.blocks.insert(hash, block);
        self.order.push_back(hash);
        if self.order.len() > self.max.saturating_mul(4) {
            // Drop stale entries so that `order` stays proportional to the pool.
            let blocks = &self.blocks;
            self.order.retain(|h| blocks.contains_key(h));
        }
        true
    }

    fn remove(&mut self, hash: &Hash) -> Option<Block> {
        let block = self.blocks.remove(hash)?;
        let parent = block.header.previous_block_hash;
        if let Some(siblings) = self.by_parent.get_mut(&parent) {
            siblings.retain(|h| h != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
        Some(block)
    }

    /// Takes out every orphan whose parent is `parent`, oldest first.
    pub fn take_children(&mut self, parent: &Hash) -> Vec<(Hash, Block)> {
        let hashes = self.by_parent.remove(parent).unwrap_or_default();
        hashes
            .into_iter()
            .filter_map(|h| self.blocks.remove(&h).map(|b| (h, b)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_engine::BlockHeader;

    fn block(parent: u8, nonce: u64) -> Block {
        Block {
            header: BlockHeader {
                previous_block_hash: Hash([parent; 32]),
                nonce,
                ..BlockHeader::default()
            },
            transactions: Vec::new(),
        }
    }

    #[test]
    fn bounded_oldest_first_and_children_by_parent() {
        let mut pool = OrphanPool::new(2);
        let (a, b, c) = (block(1, 1), block(1, 2), block(2, 3));
        assert!(pool.insert(a.hash(), a.clone()));
        assert!(!pool.insert(a.hash(), a.clone()));
        assert!(pool.insert(b.hash(), b.clone()));
        assert!(pool.insert(c.hash(), c.clone()));
        assert_eq!(pool.len(), 2);
        assert!(!pool.contains(&a.hash()), "the oldest was evicted");
        let children = pool.take_children(&Hash([1; 32]));
        assert_eq!(children, vec![(b.hash(), b)]);
        assert_eq!(pool.len(), 1);
        assert!(pool.take_children(&Hash([1; 32])).is_empty());
    }
}
