// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IConsortium} from "./IConsortium.sol";

/// @title Consortium
/// @notice Regions, signers and auditors of the credit-sharing consortium, changed only by
/// M-of-N votes of the active regions.
/// @dev Governance edge cases, decided here:
/// - Approvals are stored per (proposal, region) together with the region's epoch, the counter
///   bumped every time a region is (re-)added. An approval counts only while its region is
///   active and still in the same epoch, so a removed region's approvals stop counting at once
///   and a re-added region must approve again.
/// - Reaching the required approvals executes in the same transaction. If the change is
///   invalid at that moment (e.g. the region to add already exists) the approving transaction
///   reverts with the reason, so that approval is not recorded and the proposal stays pending;
///   the region approves again once the change is valid. `execute` only helps a proposal whose
///   recorded approvals already suffice without a further approval: after the threshold was
///   lowered, or after a removal shrank what a pending RemoveRegion needs.
/// - AddSigner needs its target region's own approval besides the threshold; RemoveRegion
///   ignores its target's approval and needs min(threshold, other active regions), lowering
///   the threshold to the regions that remain if they are fewer (see IConsortium). The last
///   region is never removed. Removing a region's last signer is refused: remove the region.
/// - Signer rights are (region, epoch) bound: `regionOf` returns 0 and `isSigner` false for a
///   signer whose region is inactive or was re-added after the signer was registered.
contract Consortium is IConsortium {
    using EnumerableSet for EnumerableSet.UintSet;
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @dev Long enough for every bureau to review a change, short enough that a forgotten
    /// proposal cannot be revived years later by a new majority.
    uint64 private constant _PROPOSAL_LIFETIME = 7 days;

    /// @dev GB/T 2260 division codes have six digits (100000 stands for the national level).
    uint32 private constant _MIN_REGION_CODE = 100_000;
    uint32 private constant _MAX_REGION_CODE = 999_999;

    struct Region {
        uint32 epoch; // 0: never added; bumped on every (re-)add
        bool active;
        uint32 signerCount;
        string name;
        string endpoint;
    }

    struct Signer {
        uint32 region;
        uint32 epoch; // the region's epoch when the signer was added
    }

    struct Proposal {
        ProposalKind kind;
        bool executed;
        address proposer;
        uint64 createdAt;
        uint64 expiresAt; // nonzero for every existing proposal
        uint32 target; // AddSigner: the region that must approve; RemoveRegion: the one removed
        bytes data;
        uint32[] approvingRegions; // each region at most once, whatever its epoch
    }

    mapping(uint32 code => Region region) private _regions;
    mapping(address account => Signer signer) private _signers;
    mapping(uint256 id => Proposal proposal) private _proposals;
    mapping(uint256 id => mapping(uint32 region => uint32 epoch)) private _approvalEpoch;
    EnumerableSet.UintSet private _activeRegions;
    EnumerableSet.AddressSet private _auditors;
    uint256 private _threshold;
    uint256 private _proposalCount;

    /// @notice Found the consortium; `signers[i]` becomes the first signer of `regions[i]`.
    /// @param regions Founding region codes (distinct GB/T 2260 codes, 100000..999999).
    /// @param names Their names (nonempty).
    /// @param signers Their first signers (distinct, nonzero).
    /// @param threshold_ Approvals needed, in 1..regions.length.
    constructor(uint32[] memory regions, string[] memory names, address[] memory signers, uint256 threshold_) {
        if (regions.length != names.length || regions.length != signers.length) {
            revert LengthMismatch(regions.length, names.length, signers.length);
        }
        if (threshold_ == 0 || threshold_ > regions.length) revert InvalidThreshold(threshold_, regions.length);
        for (uint256 i = 0; i < regions.length; ++i) {
            _checkNewRegion(regions[i], names[i], signers[i]);
            _addRegion(regions[i], names[i], signers[i]);
        }
        _threshold = threshold_;
        emit ThresholdChanged(0, threshold_);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc IConsortium
    function propose(uint8 kind, bytes calldata data) external returns (uint256 id) {
        uint32 region = _requireMember(msg.sender);
        if (kind > uint8(type(ProposalKind).max)) revert UnknownProposalKind(kind);
        ProposalKind proposalKind = ProposalKind(kind);
        _checkProposalData(proposalKind, data);

        id = ++_proposalCount;
        uint64 expiresAt = uint64(block.timestamp) + _PROPOSAL_LIFETIME;
        Proposal storage p = _proposals[id];
        p.kind = proposalKind;
        p.proposer = msg.sender;
        p.createdAt = uint64(block.timestamp);
        p.expiresAt = expiresAt;
        p.target = _targetRegion(proposalKind, data);
        p.data = data;
        emit ProposalCreated(id, region, proposalKind, data, msg.sender, expiresAt);

        _recordApproval(id, p, region);
    }

    /// @inheritdoc IConsortium
    function approve(uint256 id) external {
        uint32 region = _requireMember(msg.sender);
        Proposal storage p = _requirePending(id);
        if (_approvalEpoch[id][region] == _regions[region].epoch) revert AlreadyApproved(id, region);
        _recordApproval(id, p, region);
    }

    /// @inheritdoc IConsortium
    function execute(uint256 id) external {
        _requireMember(msg.sender);
        Proposal storage p = _requirePending(id);
        uint256 approvals = _liveApprovals(id, p);
        uint256 required = _requiredApprovals(p);
        if (approvals < required) revert BelowThreshold(id, approvals, required);
        if (!_targetApproved(id, p)) revert TargetRegionMustApprove(id, p.target);
        _execute(id, p);
    }

    /// @inheritdoc IConsortium
    function setEndpoint(uint32 region, string calldata url) external {
        if (!isSigner(msg.sender, region)) revert NotSigner(msg.sender, region);
        _regions[region].endpoint = url;
        emit EndpointSet(region, url, msg.sender);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IConsortium
    function regionOf(address account) public view returns (uint32 region) {
        Signer storage s = _signers[account];
        Region storage r = _regions[s.region];
        // A stale entry (region removed, or re-added since) grants nothing.
        if (r.active && s.epoch == r.epoch) region = s.region;
    }

    /// @inheritdoc IConsortium
    function isSigner(address account, uint32 region) public view returns (bool) {
        return region != 0 && regionOf(account) == region;
    }

    /// @inheritdoc IConsortium
    function activeRegions() external view returns (uint32[] memory regions) {
        uint256 n = _activeRegions.length();
        regions = new uint32[](n);
        for (uint256 i = 0; i < n; ++i) {
            regions[i] = uint32(_activeRegions.at(i));
        }
    }

    /// @inheritdoc IConsortium
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IConsortium
    function endpointOf(uint32 region) external view returns (string memory url) {
        if (_regions[region].active) url = _regions[region].endpoint;
    }

    /// @inheritdoc IConsortium
    function regionName(uint32 region) external view returns (string memory name) {
        return _regions[region].name;
    }

    /// @inheritdoc IConsortium
    function isActiveRegion(uint32 region) external view returns (bool) {
        return _regions[region].active;
    }

    /// @inheritdoc IConsortium
    function signerCount(uint32 region) external view returns (uint256 count) {
        if (_regions[region].active) count = _regions[region].signerCount;
    }

    /// @inheritdoc IConsortium
    function isAuditor(address account) external view returns (bool) {
        return _auditors.contains(account);
    }

    /// @inheritdoc IConsortium
    function auditors() external view returns (address[] memory accounts) {
        return _auditors.values();
    }

    /// @inheritdoc IConsortium
    function proposalLifetime() external pure returns (uint64 seconds_) {
        return _PROPOSAL_LIFETIME;
    }

    /// @inheritdoc IConsortium
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IConsortium
    function proposal(uint256 id)
        external
        view
        returns (
            ProposalKind kind,
            bytes memory data,
            address proposer,
            uint64 createdAt,
            uint64 expiresAt,
            bool executed,
            uint256 approvals
        )
    {
        Proposal storage p = _proposals[id];
        if (p.expiresAt == 0) revert UnknownProposal(id);
        return (p.kind, p.data, p.proposer, p.createdAt, p.expiresAt, p.executed, _liveApprovals(id, p));
    }

    /// @inheritdoc IConsortium
    function hasApproved(uint256 id, uint32 region) public view returns (bool) {
        Region storage r = _regions[region];
        return r.active && _approvalEpoch[id][region] == r.epoch;
    }

    // ------------------------------------------------------------------ internals

    function _requireMember(address account) private view returns (uint32 region) {
        region = regionOf(account);
        if (region == 0) revert NotMember(account);
    }

    function _requirePending(uint256 id) private view returns (Proposal storage p) {
        p = _proposals[id];
        if (p.expiresAt == 0) revert UnknownProposal(id);
        if (p.executed) revert ProposalAlreadyExecuted(id);
        if (block.timestamp >= p.expiresAt) revert ProposalExpired(id, p.expiresAt);
    }

    function _recordApproval(uint256 id, Proposal storage p, uint32 region) private {
        // A region approving again after being re-added keeps its single array entry; only
        // the epoch moves, so it is never counted twice.
        if (_approvalEpoch[id][region] == 0) p.approvingRegions.push(region);
        _approvalEpoch[id][region] = _regions[region].epoch;
        uint256 approvals = _liveApprovals(id, p);
        emit ProposalApproved(id, region, msg.sender, approvals);
        // An AddSigner that has the threshold but not its target stays pending (no revert), so
        // the approvals given so far are kept for the target's approval to complete.
        if (approvals >= _requiredApprovals(p) && _targetApproved(id, p)) _execute(id, p);
    }

    /// @dev Live approvals that count. Bounded by the number of regions that ever approved.
    function _liveApprovals(uint256 id, Proposal storage p) private view returns (uint256 count) {
        // A region that lost its keys must not be able to veto its own removal, so the removed
        // region's approval never counts (code 0 is never an approving region).
        uint32 excluded = p.kind == ProposalKind.RemoveRegion ? p.target : 0;
        uint256 n = p.approvingRegions.length;
        for (uint256 i = 0; i < n; ++i) {
            uint32 region = p.approvingRegions[i];
            if (region != excluded && hasApproved(id, region)) ++count;
        }
    }

    /// @dev A RemoveRegion needs at most the other active regions, or a threshold equal to the
    /// number of active regions would make every removal impossible. Removing the only active
    /// region needs 0 and so reaches `_removeRegion`, which refuses it with `LastRegion`.
    function _requiredApprovals(Proposal storage p) private view returns (uint256) {
        if (p.kind != ProposalKind.RemoveRegion) return _threshold;
        uint256 others = _activeRegions.length();
        if (_regions[p.target].active) --others;
        return others < _threshold ? others : _threshold;
    }

    /// @dev Without this a threshold of other regions could plant a key in the target's namespace.
    function _targetApproved(uint256 id, Proposal storage p) private view returns (bool) {
        return p.kind != ProposalKind.AddSigner || hasApproved(id, p.target);
    }

    function _execute(uint256 id, Proposal storage p) private {
        p.executed = true;
        ProposalKind kind = p.kind;
        bytes memory data = p.data;
        if (kind == ProposalKind.AddRegion) {
            (uint32 code, string memory name, address firstSigner) = abi.decode(data, (uint32, string, address));
            _checkNewRegion(code, name, firstSigner);
            _addRegion(code, name, firstSigner);
        } else if (kind == ProposalKind.RemoveRegion) {
            _removeRegion(abi.decode(data, (uint32)));
        } else if (kind == ProposalKind.AddSigner) {
            (address account, uint32 region) = abi.decode(data, (address, uint32));
            _addSigner(account, region);
        } else if (kind == ProposalKind.RemoveSigner) {
            (address account, uint32 region) = abi.decode(data, (address, uint32));
            _removeSigner(account, region);
        } else if (kind == ProposalKind.SetThreshold) {
            _setThreshold(abi.decode(data, (uint256)));
        } else if (kind == ProposalKind.AddAuditor) {
            address account = abi.decode(data, (address));
            if (!_auditors.add(account)) revert AuditorExists(account);
            emit AuditorAdded(account);
        } else {
            address account = abi.decode(data, (address));
            if (!_auditors.remove(account)) revert NotAuditor(account);
            emit AuditorRemoved(account);
        }
        emit ProposalExecuted(id, kind);
    }

    function _checkNewRegion(uint32 code, string memory name, address firstSigner) private view {
        _checkRegionCode(code);
        if (bytes(name).length == 0) revert EmptyName(code);
        if (firstSigner == address(0)) revert ZeroAddress();
        if (_regions[code].active) revert RegionExists(code);
        uint32 current = regionOf(firstSigner);
        if (current != 0) revert SignerExists(firstSigner, current);
    }

    function _addRegion(uint32 code, string memory name, address firstSigner) private {
        Region storage r = _regions[code];
        uint32 epoch = r.epoch + 1;
        r.epoch = epoch;
        r.active = true;
        r.signerCount = 1;
        r.name = name;
        delete r.endpoint;
        _activeRegions.add(code);
        _signers[firstSigner] = Signer({region: code, epoch: epoch});
        emit RegionAdded(code, name);
        emit SignerAdded(firstSigner, code);
    }

    function _removeRegion(uint32 code) private {
        Region storage r = _regions[code];
        if (!r.active) revert RegionNotActive(code);
        uint256 remaining = _activeRegions.length() - 1;
        if (remaining == 0) revert LastRegion(code);
        r.active = false;
        r.signerCount = 0;
        delete r.endpoint;
        _activeRegions.remove(code);
        emit RegionRemoved(code);
        // A threshold above the active regions could never be met again.
        if (remaining < _threshold) _setThreshold(remaining);
    }

    function _addSigner(address account, uint32 region) private {
        Region storage r = _regions[region];
        if (!r.active) revert RegionNotActive(region);
        uint32 current = regionOf(account);
        if (current != 0) revert SignerExists(account, current);
        _signers[account] = Signer({region: region, epoch: r.epoch});
        ++r.signerCount;
        emit SignerAdded(account, region);
    }

    function _removeSigner(address account, uint32 region) private {
        // The region is part of the proposal, so voters see whose key goes, and a proposal left
        // pending cannot remove the account from a region it joined later.
        if (regionOf(account) != region) revert NotSigner(account, region);
        Region storage r = _regions[region];
        if (r.signerCount == 1) revert LastSigner(account, region);
        delete _signers[account];
        --r.signerCount;
        emit SignerRemoved(account, region);
    }

    function _setThreshold(uint256 newThreshold) private {
        uint256 active = _activeRegions.length();
        if (newThreshold == 0 || newThreshold > active) revert InvalidThreshold(newThreshold, active);
        uint256 previous = _threshold;
        _threshold = newThreshold;
        emit ThresholdChanged(previous, newThreshold);
    }

    /// @dev Rejects malformed or non-canonical `data` up front with a custom error (rather than
    /// the bare revert of a failing `abi.decode`), so a proposal that could never execute is not
    /// put to a vote.
    function _checkProposalData(ProposalKind kind, bytes calldata data) private view {
        if (kind == ProposalKind.AddRegion) {
            // head: code, offset of name (must be 3 words), firstSigner; then length + padded bytes
            if (data.length < 4 * 32) revert InvalidProposalData(kind);
            uint256 code = uint256(bytes32(data[0:32]));
            uint256 nameOffset = uint256(bytes32(data[32:64]));
            uint256 firstSigner = uint256(bytes32(data[64:96]));
            uint256 nameLength = uint256(bytes32(data[96:128]));
            if (
                code > type(uint32).max || nameOffset != 3 * 32 || firstSigner > type(uint160).max
                    || nameLength > data.length || data.length != 4 * 32 + ((nameLength + 31) / 32) * 32
            ) revert InvalidProposalData(kind);
            (uint32 code32, string memory name, address signer) = abi.decode(data, (uint32, string, address));
            // Nonzero padding would make two encodings of one proposal.
            if (keccak256(abi.encode(code32, name, signer)) != keccak256(data)) revert InvalidProposalData(kind);
            _checkRegionCode(code32);
            if (nameLength == 0) revert EmptyName(code32);
            if (firstSigner == 0) revert ZeroAddress();
        } else if (kind == ProposalKind.AddSigner || kind == ProposalKind.RemoveSigner) {
            if (data.length != 64) revert InvalidProposalData(kind);
            uint256 account = uint256(bytes32(data[0:32]));
            uint256 region = uint256(bytes32(data[32:64]));
            if (account > type(uint160).max || region > type(uint32).max) revert InvalidProposalData(kind);
            if (account == 0) revert ZeroAddress();
            _checkRegionCode(uint32(region));
        } else {
            if (data.length != 32) revert InvalidProposalData(kind);
            uint256 word = uint256(bytes32(data[0:32]));
            if (kind == ProposalKind.RemoveRegion) {
                if (word > type(uint32).max) revert InvalidProposalData(kind);
                _checkRegionCode(uint32(word));
            } else if (kind == ProposalKind.SetThreshold) {
                if (word == 0) revert InvalidThreshold(0, _activeRegions.length());
            } else {
                if (word > type(uint160).max) revert InvalidProposalData(kind);
                if (word == 0) revert ZeroAddress();
            }
        }
    }

    /// @dev Only for `data` that passed `_checkProposalData`.
    function _targetRegion(ProposalKind kind, bytes calldata data) private pure returns (uint32) {
        if (kind == ProposalKind.RemoveRegion) return uint32(uint256(bytes32(data[0:32])));
        if (kind == ProposalKind.AddSigner) return uint32(uint256(bytes32(data[32:64])));
        return 0;
    }

    function _checkRegionCode(uint32 code) private pure {
        if (code < _MIN_REGION_CODE || code > _MAX_REGION_CODE) revert InvalidRegionCode(code);
    }
}
