// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IConsortium} from "./IConsortium.sol";
import {ICreditAnchor} from "./ICreditAnchor.sol";
import {RFC6962} from "./RFC6962.sol";

/// @title CreditAnchor
/// @notice Append-only batch log per region, record heads in each region's own namespace,
/// cross-region endorsements and on-chain inclusion checks.
/// @dev Write rights are read from the Consortium on every call, so a region removed there
/// loses them here in the same block.
contract CreditAnchor is ICreditAnchor {
    /// @dev Three storage slots per batch: root, manifestHash, and the packed rest. uint32
    /// timestamps last until 2106 and uint32 block numbers for 136 years provided blocks are at
    /// least one second apart (ICreditAnchor.batchOf); SafeCast makes an overflow revert rather
    /// than wrap. The saved fourth slot is 20,000 gas on every batch.
    struct Batch {
        bytes32 root;
        bytes32 manifestHash;
        address submitter;
        uint32 size;
        uint32 anchoredAt;
        uint32 blockNumber;
    }

    struct Head {
        bytes32 leafHash;
        uint64 seq;
        uint32 version;
        uint8 status;
    }

    uint8 private constant _STATUS_ACTIVE = 1;
    uint8 private constant _STATUS_EXPIRED = 3;

    /// @dev Immutable: read on every write without an SLOAD. Deployment checks compare runtime
    /// code with this address masked out.
    IConsortium private immutable _consortium;

    mapping(uint32 region => uint64 seq) private _nextSeq;
    mapping(uint32 region => mapping(uint64 seq => Batch batch)) private _batches;
    mapping(uint32 region => mapping(bytes32 recordKey => Head head)) private _heads;
    mapping(uint32 region => mapping(uint64 seq => uint32[] endorserRegions)) private _endorsers;

    /// @notice Bind the anchor, for good, to the Consortium whose signers may write.
    /// @param consortium_ The Consortium contract deciding who may write.
    constructor(address consortium_) {
        if (consortium_ == address(0)) revert ZeroConsortium();
        _consortium = IConsortium(consortium_);
    }

    /// @inheritdoc ICreditAnchor
    function anchorBatch(
        uint32 region,
        uint64 seq,
        bytes32 root,
        uint32 size,
        bytes32 manifestHash,
        HeadUpdate[] calldata heads
    ) external {
        if (!_consortium.isSigner(msg.sender, region)) revert NotSigner(msg.sender, region);
        uint64 expected = _nextSeq[region];
        if (seq != expected) revert BatchOutOfOrder(region, expected, seq);
        if (size == 0) revert EmptyBatch(region, seq);
        if (root == bytes32(0)) revert ZeroRoot(region, seq);
        if (heads.length > size) revert TooManyHeads(region, seq, heads.length, size);

        // Heads are checked and stored before anything is emitted. Each check reads the head
        // the previous update may have just moved, so v2 then v3 of one record in one batch
        // pass; a later failing head reverts the earlier ones with it.
        _moveHeads(region, seq, heads);
        _nextSeq[region] = expected + 1;
        _batches[region][seq] = Batch({
            root: root,
            manifestHash: manifestHash,
            submitter: msg.sender,
            size: size,
            anchoredAt: SafeCast.toUint32(block.timestamp),
            blockNumber: SafeCast.toUint32(block.number)
        });
        emit BatchAnchored(region, seq, root, size, manifestHash, msg.sender);
        for (uint256 i = 0; i < heads.length; ++i) {
            HeadUpdate calldata update = heads[i];
            emit HeadMoved(region, update.recordKey, update.leafHash, seq, update.version, update.status);
        }
    }

    /// @inheritdoc ICreditAnchor
    function endorse(uint32 region, uint64 seq, bytes32 root) external {
        uint32 endorserRegion = _consortium.regionOf(msg.sender);
        if (endorserRegion == 0) revert NotMember(msg.sender);
        if (endorserRegion == region) revert SelfEndorsement(region);
        bytes32 anchored = _batches[region][seq].root;
        if (anchored == bytes32(0)) revert UnknownBatch(region, seq);
        if (anchored != root) revert RootMismatch(region, seq, anchored, root);
        uint32[] storage endorsers = _endorsers[region][seq];
        // Bounded by the number of regions; cheaper than a separate "endorsed" mapping slot.
        uint256 n = endorsers.length;
        for (uint256 i = 0; i < n; ++i) {
            if (endorsers[i] == endorserRegion) revert AlreadyEndorsed(region, seq, endorserRegion);
        }
        endorsers.push(endorserRegion);
        emit BatchEndorsed(region, seq, endorserRegion, msg.sender);
    }

    /// @inheritdoc ICreditAnchor
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    /// @inheritdoc ICreditAnchor
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
        )
    {
        Batch storage b = _batches[region][seq];
        return (b.root, b.size, b.anchoredAt, b.blockNumber, b.submitter, b.manifestHash);
    }

    /// @inheritdoc ICreditAnchor
    function nextSeq(uint32 region) external view returns (uint64 seq) {
        return _nextSeq[region];
    }

    /// @inheritdoc ICreditAnchor
    function headOf(uint32 region, bytes32 recordKey)
        external
        view
        returns (bytes32 leafHash, uint64 seq, uint32 version, uint8 status)
    {
        Head storage h = _heads[region][recordKey];
        return (h.leafHash, h.seq, h.version, h.status);
    }

    /// @inheritdoc ICreditAnchor
    function endorsersOf(uint32 region, uint64 seq) external view returns (uint32[] memory regions) {
        return _endorsers[region][seq];
    }

    /// @inheritdoc ICreditAnchor
    function verifyInclusion(uint32 region, uint64 seq, bytes32 leafHash, uint256 index, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        Batch storage b = _batches[region][seq];
        // An unknown batch has size 0, so every index is out of range: false.
        return RFC6962.verifyInclusion(leafHash, index, b.size, proof, b.root);
    }

    function _moveHeads(uint32 region, uint64 seq, HeadUpdate[] calldata heads) private {
        // Keyed by the anchoring region: a region can only ever move heads in its own namespace.
        mapping(bytes32 recordKey => Head head) storage regionHeads = _heads[region];
        for (uint256 i = 0; i < heads.length; ++i) {
            HeadUpdate calldata update = heads[i];
            Head storage head = regionHeads[update.recordKey];
            // Version 1 is implicitly current before any head exists, so the floor is 1.
            uint32 current = head.version == 0 ? 1 : head.version;
            if (update.version <= current) {
                revert VersionNotIncreasing(region, update.recordKey, current, update.version);
            }
            // A jump would make the head claim versions no batch carries and, being the new
            // floor, refuse the record's real next version for good.
            if (update.version != current + 1) {
                revert VersionGap(region, update.recordKey, current + 1, update.version);
            }
            if (update.status < _STATUS_ACTIVE || update.status > _STATUS_EXPIRED) {
                revert InvalidStatus(region, update.recordKey, update.status);
            }
            if (update.leafHash == bytes32(0)) revert ZeroLeafHash(region, update.recordKey);
            head.leafHash = update.leafHash;
            head.seq = seq;
            head.version = update.version;
            head.status = update.status;
        }
    }
}
