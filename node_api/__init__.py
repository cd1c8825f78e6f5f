"""The regional node service: intake, durable anchoring, receipts, verification and history."""

__all__: list[str] = []
