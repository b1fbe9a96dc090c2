//! BEP 52 merkle trees: SHA-256 over 16 KiB blocks, a binary tree per file.
//!
//! A file's tree has as many leaves as the next power of two of its block
//! count; leaves past the end of the file are 32 zero bytes, and the nodes
//! above them are hashed like any other ("padding hashes"). The *piece layer*
//! is the layer whose nodes each cover one piece; the *pieces root* is the
//! top. A file no larger than one piece has no piece layer in the torrent.

use sha2::{Digest, Sha256};

/// Size of a leaf block in bytes.
pub const BLOCK_SIZE: u64 = 16 * 1024;

/// A SHA-256 digest: a leaf, a node or a root.
pub type Hash256 = [u8; 32];

/// The hash of one leaf block (the last block of a file may be shorter).
pub fn block_hash(block: &[u8]) -> Hash256 {
    Sha256::digest(block).into()
}

fn parent(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of a subtree of `2^height` zero leaves.
pub fn padding_hash(height: u32) -> Hash256 {
    (0..height).fold([0u8; 32], |node, _| parent(&node, &node))
}

/// The root over `nodes` padded with `padding` (the hash of an empty
/// subtree of the same height) up to `width` nodes, a power of two no
/// smaller than `nodes.len()`.
pub fn root_of_layer(nodes: &[Hash256], width: usize, padding: Hash256) -> Hash256 {
    debug_assert!(width.is_power_of_two() && width >= nodes.len());
    if nodes.is_empty() {
        return padding_hash_above(padding, width.trailing_zeros());
    }
    let mut layer: Vec<Hash256> = nodes.to_vec();
    let mut pad = padding;
    let mut width = width;
    while width > 1 {
        if layer.len() % 2 == 1 {
            layer.push(pad);
        }
        layer = layer
            .chunks_exact(2)
            .map(|pair| parent(&pair[0], &pair[1]))
            .collect();
        pad = parent(&pad, &pad);
        width /= 2;
    }
    layer[0]
}

fn padding_hash_above(node: Hash256, levels: u32) -> Hash256 {
    (0..levels).fold(node, |node, _| parent(&node, &node))
}

/// The piece-layer node for one piece: the root over its block hashes,
/// padded with zero leaves to a full piece.
pub fn piece_node(block_hashes: &[Hash256], blocks_per_piece: usize) -> Hash256 {
    root_of_layer(block_hashes, blocks_per_piece, [0u8; 32])
}

/// The pieces root of a file of more than one piece, from its piece layer.
pub fn root_from_piece_layer(piece_layer: &[Hash256], blocks_per_piece: usize) -> Hash256 {
    let width = piece_layer.len().next_power_of_two();
    root_of_layer(
        piece_layer,
        width,
        padding_hash(blocks_per_piece.trailing_zeros()),
    )
}

/// The pieces root of a file of at most one piece, from its block hashes:
/// its tree is only as wide as its own block count needs.
pub fn root_from_blocks(block_hashes: &[Hash256]) -> Hash256 {
    let width = block_hashes.len().next_power_of_two();
    root_of_layer(block_hashes, width, [0u8; 32])
}

/// Block hashes of `data`, split into 16 KiB blocks.
pub fn block_hashes(data: &[u8]) -> Vec<Hash256> {
    data.chunks(BLOCK_SIZE as usize).map(block_hash).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_hashes_stack() {
        assert_eq!(padding_hash(0), [0u8; 32]);
        let one = parent(&[0u8; 32], &[0u8; 32]);
        assert_eq!(padding_hash(1), one);
        assert_eq!(padding_hash(2), parent(&one, &one));
    }

    #[test]
    fn single_block_root_is_the_leaf() {
        let leaf = block_hash(b"hello");
        assert_eq!(root_from_blocks(&[leaf]), leaf);
    }

    #[test]
    fn three_blocks_pad_to_four_with_zero_leaves() {
        let leaves: Vec<Hash256> = (0u8..3).map(|i| block_hash(&[i])).collect();
        let expected = parent(
            &parent(&leaves[0], &leaves[1]),
            &parent(&leaves[2], &[0u8; 32]),
        );
        assert_eq!(root_from_blocks(&leaves), expected);
    }

    #[test]
    fn piece_layer_root_equals_root_over_all_leaves() {
        // 5 pieces of 4 blocks, the last one partial: computing through the
        // piece layer must give the same root as the full 32-leaf tree.
        let leaves: Vec<Hash256> = (0u8..18).map(|i| block_hash(&[i; 7])).collect();
        let layer: Vec<Hash256> = leaves.chunks(4).map(|piece| piece_node(piece, 4)).collect();
        assert_eq!(layer.len(), 5);
        let direct = root_of_layer(&leaves, 32, [0u8; 32]);
        assert_eq!(root_from_piece_layer(&layer, 4), direct);
    }
}
