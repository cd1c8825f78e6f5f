// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title NaiveRegistry
/// @notice Benchmark peer, not part of the product: the per-record registry many pilots
/// build, one transaction storing one record commitment. Kept as small as such a registry
/// can be (one storage slot per record, one event) so the comparison flatters it.
contract NaiveRegistry {
    /// @notice A commitment was stored for a record.
    event CommitmentRegistered(bytes32 indexed recordKey, bytes32 commitment, address submitter);

    /// @notice The record key already holds a commitment.
    error AlreadyRegistered(bytes32 recordKey);

    mapping(bytes32 recordKey => bytes32 commitment) private _commitments;

    /// @notice Store the commitment of one record.
    /// @param recordKey The record's key (DESIGN §3).
    /// @param commitment The record's salted commitment.
    function register(bytes32 recordKey, bytes32 commitment) external {
        if (_commitments[recordKey] != bytes32(0)) revert AlreadyRegistered(recordKey);
        _commitments[recordKey] = commitment;
        emit CommitmentRegistered(recordKey, commitment, msg.sender);
    }

    /// @notice The stored commitment of a record (zero if none).
    /// @param recordKey The record's key.
    /// @return The commitment.
    function commitmentOf(bytes32 recordKey) external view returns (bytes32) {
        return _commitments[recordKey];
    }
}
