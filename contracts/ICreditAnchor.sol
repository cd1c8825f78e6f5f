// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ICreditAnchor
/// @notice Append-only log of Merkle-batched credit record commitments, one sequence per region,
/// with record heads (the latest version of each superseded record), cross-region endorsements
/// and an on-chain RFC 6962 inclusion check.
/// @dev What the contract does not check: it never sees the leaves, so a head is not bound to
/// the root of the batch that moved it. A signer could set a head whose `leafHash` is in no
/// batch at all. Before trusting `headOf(region, key)`, a verifier must prove that its
/// `leafHash` is included in batch `seq` of `region` (`verifyInclusion`, or the same RFC 6962
/// check off chain against `batchOf(region, seq).root`).
interface ICreditAnchor {
    /// @notice The new head of a record superseded in a batch (every version > 1 in it, in
    /// order: v2 then v3 of one record may share a batch).
    /// @dev Not checked against the batch root; see the notes on the interface.
    /// @param recordKey The record key (DESIGN §3).
    /// @param leafHash RFC 6962 leaf hash of the new version's leaf, which the batch must contain.
    /// @param version Exactly one more than the record's current head version (1 if it has none).
    /// @param status 1 active, 2 revoked, 3 expired.
    struct HeadUpdate {
        bytes32 recordKey;
        bytes32 leafHash;
        uint32 version;
        uint8 status;
    }

    // ------------------------------------------------------------------ events

    /// @notice Batch `seq` of `region` was anchored.
    event BatchAnchored(
        uint32 indexed region, uint64 indexed seq, bytes32 root, uint32 size, bytes32 manifestHash, address submitter
    );

    /// @notice The head of `recordKey` in `region`'s namespace moved to `version` in batch `seq`.
    event HeadMoved(
        uint32 indexed region, bytes32 indexed recordKey, bytes32 leafHash, uint64 seq, uint32 version, uint8 status
    );

    /// @notice A signer of `endorserRegion` vouched for every record of batch `seq` of `region`.
    event BatchEndorsed(uint32 indexed region, uint64 indexed seq, uint32 indexed endorserRegion, address endorser);

    // ------------------------------------------------------------------ errors

    /// @notice The consortium address is zero.
    error ZeroConsortium();
    /// @notice `account` is not a signer of the active region `region`.
    error NotSigner(address account, uint32 region);
    /// @notice `account` is not a signer of any active region.
    error NotMember(address account);
    /// @notice `region` expects sequence number `expected` next; `got` leaves a gap or rewrites.
    error BatchOutOfOrder(uint32 region, uint64 expected, uint64 got);
    /// @notice A batch must hold at least one leaf.
    error EmptyBatch(uint32 region, uint64 seq);
    /// @notice A batch root cannot be zero.
    error ZeroRoot(uint32 region, uint64 seq);
    /// @notice A batch of `size` leaves holds at most `size` new versions.
    error TooManyHeads(uint32 region, uint64 seq, uint256 heads, uint32 size);
    /// @notice The head of `recordKey` is at `current` (1 if never superseded); `got` must exceed it.
    error VersionNotIncreasing(uint32 region, bytes32 recordKey, uint32 current, uint32 got);
    /// @notice The next version of `recordKey` is `expected`; `got` skips versions.
    error VersionGap(uint32 region, bytes32 recordKey, uint32 expected, uint32 got);
    /// @notice Status must be 1 (active), 2 (revoked) or 3 (expired).
    error InvalidStatus(uint32 region, bytes32 recordKey, uint8 status);
    /// @notice A head's leaf hash cannot be zero.
    error ZeroLeafHash(uint32 region, bytes32 recordKey);
    /// @notice Batch `seq` of `region` has not been anchored.
    error UnknownBatch(uint32 region, uint64 seq);
    /// @notice The endorsed root differs from the anchored one.
    error RootMismatch(uint32 region, uint64 seq, bytes32 expected, bytes32 got);
    /// @notice A region cannot endorse its own batches.
    error SelfEndorsement(uint32 region);
    /// @notice `endorserRegion` endorsed this batch already.
    error AlreadyEndorsed(uint32 region, uint64 seq, uint32 endorserRegion);

    // ------------------------------------------------------------------ writes

    /// @notice Anchor the next batch of `region`: its Merkle root, size, manifest hash and the
    /// new heads of the records it supersedes.
    /// @param region The caller's region (the caller must be its signer, the region active).
    /// @param seq Must equal `nextSeq(region)`.
    /// @param root RFC 6962 Merkle tree hash of the batch (nonzero).
    /// @param size Number of leaves (nonzero).
    /// @param manifestHash Hash of the batch manifest kept off chain.
    /// @param heads New heads, in `region`'s namespace; each version is the record's current
    /// head version + 1 (so no gaps, no repeats), and at most `size` of them.
    function anchorBatch(
        uint32 region,
        uint64 seq,
        bytes32 root,
        uint32 size,
        bytes32 manifestHash,
        HeadUpdate[] calldata heads
    ) external;

    /// @notice State, as a signer of another active region, that every record of batch `seq` of
    /// `region` was received and verified against `root`.
    /// @param region The batch's region.
    /// @param seq The batch's sequence number.
    /// @param root The root the endorser verified; must equal the anchored root.
    function endorse(uint32 region, uint64 seq, bytes32 root) external;

    // ------------------------------------------------------------------ views

    /// @notice The consortium whose signers may write.
    /// @return The Consortium contract address.
    function consortium() external view returns (address);

    /// @notice An anchored batch; all zero if not anchored.
    /// @dev `anchoredAt` and `blockNumber` are stored as uint32: timestamps last until 2106, and
    /// block numbers for 136 years on the assumption that blocks are at least one second apart
    /// (a chain with faster blocks runs out sooner). Past either limit `anchorBatch` reverts
    /// rather than store a wrapped value.
    /// @param region Region code.
    /// @param seq Sequence number.
    /// @return root Merkle root.
    /// @return size Number of leaves.
    /// @return anchoredAt Unix seconds of the anchoring block.
    /// @return blockNumber The anchoring block.
    /// @return submitter The signer that anchored it.
    /// @return manifestHash Hash of the batch manifest.
    function batchOf(uint32 region, uint64 seq)
        external
        view
        returns (
            bytes32 root,
            uint32 size,
            uint64 anchoredAt,
            uint64 blockNumber,
            address submitter,
            bytes32 manifestHash
        );

    /// @notice The sequence number the next batch of `region` must carry (= batches anchored).
    /// @param region Region code.
    /// @return seq The next sequence number.
    function nextSeq(uint32 region) external view returns (uint64 seq);

    /// @notice The head of a record in `region`'s namespace.
    /// @dev Only as trustworthy as an inclusion proof of `leafHash` in batch `seq` of `region`:
    /// heads are not bound to batch roots (see the notes on the interface).
    /// @param region Region code.
    /// @param recordKey Record key.
    /// @return leafHash Leaf hash of the latest version (zero if never superseded).
    /// @return seq Batch that moved the head.
    /// @return version Latest version (0: never superseded, version 1 is current).
    /// @return status Status of the latest version.
    function headOf(uint32 region, bytes32 recordKey)
        external
        view
        returns (bytes32 leafHash, uint64 seq, uint32 version, uint8 status);

    /// @notice Regions that endorsed a batch, in endorsement order.
    /// @dev Kept when an endorsing region is removed later: an endorsement is a statement made
    /// while the region was active. Check `BatchEndorsed` (its block) against `RegionRemoved`
    /// to weigh it.
    /// @param region Region code.
    /// @param seq Sequence number.
    /// @return regions Endorsing region codes.
    function endorsersOf(uint32 region, uint64 seq) external view returns (uint32[] memory regions);

    /// @notice Whether `proof` shows `leafHash` at `index` in batch `seq` of `region` (RFC 6962,
    /// SHA-256 precompile).
    /// @param region Region code.
    /// @param seq Sequence number.
    /// @param leafHash RFC 6962 leaf hash (SHA-256(0x00 || leaf_bytes)).
    /// @param index Leaf position.
    /// @param proof Audit path.
    /// @return True if included; false (no revert) for an unknown batch, `index >= size`, a proof
    /// of the wrong length or a wrong proof.
    function verifyInclusion(uint32 region, uint64 seq, bytes32 leafHash, uint256 index, bytes32[] calldata proof)
        external
        view
        returns (bool);
}
