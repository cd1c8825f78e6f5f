// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IConsortium
/// @notice Membership of the credit-sharing consortium: regions, their signer keys, auditors,
/// and M-of-N governance among the active regions. There is no owner: after construction every
/// change is a proposal that executes once `threshold()` distinct active regions approved it.
/// @dev Signer rights are tied to the region's current incarnation: removing a region revokes
/// all of its signers at once (no loop), and re-adding the same code later does not revive them.
///
/// What the other regions can and cannot do to a region R:
/// - They cannot give R a signer: an AddSigner for R executes only once R itself approved it
///   (besides the threshold), so a threshold of other regions cannot plant a key that anchors
///   R's batches, moves R's record heads or sets R's endpoint.
/// - They can remove R: a RemoveRegion of R does not count R's own approval and needs
///   min(threshold, active regions - 1) approvals of the other active regions, so a region
///   that lost its keys cannot freeze governance even when the threshold equals the number of
///   active regions. If fewer than `threshold()` regions remain, the threshold drops to the
///   number remaining (`ThresholdChanged`).
/// - Hence a threshold of regions can reassign R's namespace (its batch log, record heads and
///   endpoint) by removing R and re-adding the code with a new first signer. This is the
///   deliberate recovery path for a region that lost its keys, and it is never silent:
///   verifiers see `RegionRemoved(R)` followed by `RegionAdded(R, …)` and `SignerAdded`, and
///   should attribute R's batches anchored after the re-add to the new key holder.
interface IConsortium {
    /// @notice What a proposal does once it executes; the ABI carries it as `uint8`.
    enum ProposalKind {
        AddRegion, // data = abi.encode(uint32 code, string name, address firstSigner)
        RemoveRegion, // data = abi.encode(uint32 code)
        AddSigner, // data = abi.encode(address account, uint32 region)
        RemoveSigner, // data = abi.encode(address account, uint32 region)
        SetThreshold, // data = abi.encode(uint256 threshold)
        AddAuditor, // data = abi.encode(address account)
        RemoveAuditor // data = abi.encode(address account)
    }

    // ------------------------------------------------------------------ events

    /// @notice A region joined (or re-joined) the consortium. A re-join after `RegionRemoved`
    /// hands the region's namespace to a new first signer (see the notes on the interface).
    /// @param region GB/T 2260 division code.
    /// @param name Human-readable name.
    event RegionAdded(uint32 indexed region, string name);

    /// @notice A region left the consortium; its signers lost every right in the same transaction.
    /// @param region GB/T 2260 division code.
    event RegionRemoved(uint32 indexed region);

    /// @notice `account` became a signer of `region`.
    event SignerAdded(address indexed account, uint32 indexed region);

    /// @notice `account` is no longer a signer of `region`.
    event SignerRemoved(address indexed account, uint32 indexed region);

    /// @notice The number of distinct region approvals a proposal needs changed (by a
    /// SetThreshold proposal, or by a RemoveRegion that left fewer active regions than it).
    event ThresholdChanged(uint256 previous, uint256 current);

    /// @notice `account` became an auditor.
    event AuditorAdded(address indexed account);

    /// @notice `account` is no longer an auditor.
    event AuditorRemoved(address indexed account);

    /// @notice A signer of `region` set the URL of the region's node.
    event EndpointSet(uint32 indexed region, string url, address signer);

    /// @notice A signer of `region` proposed a change; its region's approval is already counted.
    event ProposalCreated(
        uint256 indexed id, uint32 indexed region, ProposalKind kind, bytes data, address proposer, uint64 expiresAt
    );

    /// @notice A signer of `region` approved proposal `id`; `approvals` counts distinct active regions.
    event ProposalApproved(uint256 indexed id, uint32 indexed region, address approver, uint256 approvals);

    /// @notice Proposal `id` reached the threshold and its change was applied.
    event ProposalExecuted(uint256 indexed id, ProposalKind kind);

    // ------------------------------------------------------------------ errors

    /// @notice Constructor arrays differ in length.
    error LengthMismatch(uint256 regions, uint256 names, uint256 signers);
    /// @notice Region codes are GB/T 2260 six-digit division codes, 100000..999999 (0 means "no region").
    error InvalidRegionCode(uint32 code);
    /// @notice The zero address can be neither signer nor auditor.
    error ZeroAddress();
    /// @notice A region needs a name.
    error EmptyName(uint32 region);
    /// @notice `region` is already an active region.
    error RegionExists(uint32 region);
    /// @notice `region` is not an active region.
    error RegionNotActive(uint32 region);
    /// @notice `account` already is a signer of the active region `region`.
    error SignerExists(address account, uint32 region);
    /// @notice `account` is not a signer of any active region.
    error NotMember(address account);
    /// @notice `account` is not a signer of the active region `region`.
    error NotSigner(address account, uint32 region);
    /// @notice Removing `account` would leave `region` without any signer; remove the region instead.
    error LastSigner(address account, uint32 region);
    /// @notice `threshold` must lie in 1..`activeRegions` (the active regions after the change).
    error InvalidThreshold(uint256 threshold, uint256 activeRegions);
    /// @notice `region` is the only active region; the consortium never becomes empty.
    error LastRegion(uint32 region);
    /// @notice `account` already is an auditor.
    error AuditorExists(address account);
    /// @notice `account` is not an auditor.
    error NotAuditor(address account);
    /// @notice `kind` is not a `ProposalKind`.
    error UnknownProposalKind(uint8 kind);
    /// @notice `data` is not the canonical encoding of the arguments of `kind`.
    error InvalidProposalData(ProposalKind kind);
    /// @notice No proposal has this id.
    error UnknownProposal(uint256 id);
    /// @notice The proposal expired at `expiredAt` (unix seconds) without reaching the threshold.
    error ProposalExpired(uint256 id, uint64 expiredAt);
    /// @notice The proposal was executed already.
    error ProposalAlreadyExecuted(uint256 id);
    /// @notice `region` approved proposal `id` already (through this or another of its signers).
    error AlreadyApproved(uint256 id, uint32 region);
    /// @notice The proposal has `approvals` of the `threshold` distinct active-region approvals it
    /// needs (`threshold()`, or fewer for a RemoveRegion when fewer other regions are active).
    error BelowThreshold(uint256 id, uint256 approvals, uint256 threshold);
    /// @notice An AddSigner for `region` executes only once `region` itself approved it.
    error TargetRegionMustApprove(uint256 id, uint32 region);

    // ------------------------------------------------------------------ governance

    /// @notice Propose a change; the caller's region approves it at once, so with threshold 1 it
    /// executes in the same transaction, unless it needs another region: an AddSigner for
    /// another region waits for that region's approval, and a RemoveRegion of the caller's own
    /// region does not count the caller's approval.
    /// @dev State-independent checks (kind, encoding, zero values, region code range) run here;
    /// state-dependent ones run at execution, and if they fail there the executing approval
    /// reverts with the reason while the proposal stays pending (at threshold 1 the proposal
    /// itself reverts).
    /// @param kind A `ProposalKind` as uint8.
    /// @param data The ABI-encoded arguments of `kind` (see `ProposalKind`).
    /// @return id The proposal id (ids start at 1).
    function propose(uint8 kind, bytes calldata data) external returns (uint256 id);

    /// @notice Approve proposal `id` on behalf of the caller's region; executes it when the
    /// approvals of distinct active regions reach `threshold()` and, for an AddSigner, the
    /// target region is among them. The region a RemoveRegion removes may approve, but its
    /// approval does not count; that proposal needs min(threshold, active regions - 1).
    /// @param id The proposal id.
    function approve(uint256 id) external;

    /// @notice Execute a pending proposal whose approvals already suffice, e.g. after the
    /// threshold was lowered since they were given; callable by any signer of an active region.
    /// Reverts with `BelowThreshold` or `TargetRegionMustApprove` when they do not, or with the
    /// failing state check of the change itself.
    /// @param id The proposal id.
    function execute(uint256 id) external;

    /// @notice Set the URL of the caller's region node; any signer of `region`, no vote.
    /// @param region The caller's region.
    /// @param url The endpoint URL (empty clears it).
    function setEndpoint(uint32 region, string calldata url) external;

    // ------------------------------------------------------------------ views

    /// @notice The active region `account` signs for.
    /// @param account Any address.
    /// @return region The region code, or 0 if `account` is not a signer of an active region.
    function regionOf(address account) external view returns (uint32 region);

    /// @notice Whether `account` is a signer of `region` and `region` is active.
    /// @param account Any address.
    /// @param region A region code.
    /// @return True if `account` may act for `region`.
    function isSigner(address account, uint32 region) external view returns (bool);

    /// @notice The active region codes, in no particular order.
    /// @return regions The codes.
    function activeRegions() external view returns (uint32[] memory regions);

    /// @notice Number of distinct active-region approvals a proposal needs.
    /// @return The threshold.
    function threshold() external view returns (uint256);

    /// @notice The node URL registered for `region`.
    /// @param region A region code.
    /// @return url The URL ("" if unset or the region is not active).
    function endpointOf(uint32 region) external view returns (string memory url);

    /// @notice The name of `region`.
    /// @param region A region code.
    /// @return name The name ("" if the region was never added); kept after removal.
    function regionName(uint32 region) external view returns (string memory name);

    /// @notice Whether `region` is currently active.
    /// @param region A region code.
    /// @return True if active.
    function isActiveRegion(uint32 region) external view returns (bool);

    /// @notice Number of signers of `region` (0 if not active).
    /// @param region A region code.
    /// @return count The number of signers.
    function signerCount(uint32 region) external view returns (uint256 count);

    /// @notice Whether `account` is an auditor.
    /// @param account Any address.
    /// @return True if an auditor.
    function isAuditor(address account) external view returns (bool);

    /// @notice All auditors, in no particular order.
    /// @return accounts The auditor addresses.
    function auditors() external view returns (address[] memory accounts);

    /// @notice How long a proposal can collect approvals.
    /// @return seconds_ The lifetime in seconds.
    function proposalLifetime() external pure returns (uint64 seconds_);

    /// @notice Number of proposals created so far (the latest id).
    /// @return The count.
    function proposalCount() external view returns (uint256);

    /// @notice A proposal; reverts with `UnknownProposal` for an id never issued.
    /// @param id The proposal id.
    /// @return kind What it does.
    /// @return data Its ABI-encoded arguments.
    /// @return proposer Who proposed it.
    /// @return createdAt Unix seconds of creation.
    /// @return expiresAt Unix seconds from which it can no longer be approved.
    /// @return executed Whether it executed.
    /// @return approvals Approvals that count: by distinct currently active regions, without the
    /// approval of the region a RemoveRegion removes.
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
        );

    /// @notice Whether `region` approved proposal `id` and the approval is live: the region is
    /// active and approved after it was last (re-)added. (The approval of the region a
    /// RemoveRegion removes is live but never counted.)
    /// @param id The proposal id.
    /// @param region A region code.
    /// @return True if approved.
    function hasApproved(uint256 id, uint32 region) external view returns (bool);
}
