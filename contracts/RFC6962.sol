// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title RFC6962
/// @notice Merkle inclusion proofs of RFC 6962 / RFC 9162 (Certificate Transparency) with SHA-256:
/// leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right).
/// @dev Callers pass leaf hashes, never leaf data, so the 0x00/0x01 domain separation that stops
/// a node from posing as a leaf stays with the hashing of the leaf (done off chain).
library RFC6962 {
    /// @notice SHA-256(0x01 || left || right), via the SHA-256 precompile at address 0x02.
    /// @param left Left child hash.
    /// @param right Right child hash.
    /// @return node The parent hash.
    function hashChildren(bytes32 left, bytes32 right) internal view returns (bytes32 node) {
        assembly ("memory-safe") {
            // 65 bytes at the free memory pointer, which is not advanced: scratch use only
            // (0x00-0x3f is too small for 65 bytes). Avoids abi.encodePacked's allocation per level.
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 0x01), left)
            mstore(add(ptr, 0x21), right)
            if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0, 0) }
            node := mload(0x00)
        }
    }

    /// @notice The root that an inclusion proof implies (RFC 9162 §2.1.3.2).
    /// @param leafHash RFC 6962 hash of the leaf.
    /// @param index Position of the leaf (0-based).
    /// @param size Number of leaves in the tree.
    /// @param proof Audit path, from the leaf's sibling upwards.
    /// @return ok False if `index >= size` or `proof` has the wrong length for (index, size).
    /// @return root The implied root (meaningful only if `ok`).
    function rootFromInclusionProof(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata proof)
        internal
        view
        returns (bool ok, bytes32 root)
    {
        if (index >= size) return (false, bytes32(0));
        uint256 fn = index;
        uint256 sn = size - 1;
        root = leafHash;
        uint256 n = proof.length;
        for (uint256 i = 0; i < n; ++i) {
            // More proof elements than levels: reject instead of hashing past the root.
            if (sn == 0) return (false, bytes32(0));
            bytes32 sibling = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                root = hashChildren(sibling, root);
                // On the right border the node has no right sibling at these levels: skip them.
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                root = hashChildren(root, sibling);
            }
            fn >>= 1;
            sn >>= 1;
        }
        // Fewer proof elements than levels.
        ok = sn == 0;
    }

    /// @notice Whether `proof` shows `leafHash` at `index` in the tree of `size` leaves with `root`.
    /// @param leafHash RFC 6962 hash of the leaf.
    /// @param index Position of the leaf (0-based).
    /// @param size Number of leaves in the tree.
    /// @param proof Audit path.
    /// @param root Expected tree root.
    /// @return True if the proof verifies; false for any malformed input (never reverts).
    function verifyInclusion(bytes32 leafHash, uint256 index, uint256 size, bytes32[] calldata proof, bytes32 root)
        internal
        view
        returns (bool)
    {
        (bool ok, bytes32 computed) = rootFromInclusionProof(leafHash, index, size, proof);
        return ok && computed == root;
    }
}
