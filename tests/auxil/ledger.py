"""Tallies of the fault and abuse suite, printed as a table at the end of the test run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultLedger:
    """Each fault or abuse case records whether the bot survived it, and any lost turns (a turn
    with no reply and no history) or duplicate generations it saw. Counts are per case."""

    tried: int = 0
    survived: int = 0
    lost_turns: int = 0
    duplicate_generations: int = 0
    failures: list[str] = field(default_factory=list)

    def record(
        self, case: str, *, survived: bool, lost_turns: int = 0, duplicate_generations: int = 0
    ) -> None:
        self.tried += 1
        self.survived += int(survived)
        self.lost_turns += lost_turns
        self.duplicate_generations += duplicate_generations
        if not survived or lost_turns or duplicate_generations:
            self.failures.append(case)

    def table(self) -> list[str]:
        rows = [
            ("cases tried", self.tried),
            ("survived", self.survived),
            ("lost turns (must be 0)", self.lost_turns),
            ("duplicate generations (must be 0)", self.duplicate_generations),
        ]
        width = max(len(name) for name, _ in rows)
        lines = ["fault and abuse suite", "-" * (width + 10)]
        lines += [f"{name:<{width}}  {value:>6}" for name, value in rows]
        if self.failures:
            lines.append("cases with problems: " + ", ".join(self.failures))
        return lines


LEDGER = FaultLedger()
