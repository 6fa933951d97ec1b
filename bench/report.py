"""The results table: each figure next to its target, as text, markdown and JSON."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    """One figure. ``target`` None means the row is context for the rows that have one."""

    key: str
    section: str
    measure: str
    figure: float
    shown: str
    target: float | None = None
    target_shown: str = "—"

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        return "PASS" if self.figure <= self.target else "FAIL"


@dataclass
class Report:
    """Everything one run measured, with the machine it ran on."""

    mode: str
    command: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    duration_s: float = 0.0

    def add(self, row: Row) -> None:
        self.rows.append(row)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "FAIL"]

    def table_lines(self) -> list[str]:
        header = ("#", "measure", "figure", "target", "result")
        body = [(r.section, r.measure, r.shown, r.target_shown, r.verdict) for r in self.rows]
        widths = [max(len(str(line[i])) for line in (header, *body)) for i in range(len(header))]
        fmt = "  ".join(f"{{:{'>' if i == 2 else '<'}{w}}}" for i, w in enumerate(widths))
        return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [
            fmt.format(*line) for line in body
        ]

    def markdown(self) -> str:
        lines = [
            f"Measured {self.started} with `{self.command}` ({self.mode} run, {self.duration_s:.0f} s) on "
            f"{self.machine.get('summary', 'an unknown machine')}.",
            "",
            "| # | measure | figure | target | result |",
            "|---|---|--:|---|---|",
        ]
        lines += [
            f"| {r.section} | {r.measure} | {r.shown} | {r.target_shown} | {r.verdict} |" for r in self.rows
        ]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"

    def as_json(self) -> str:
        data = asdict(self)
        for row, out in zip(self.rows, data["rows"], strict=True):
            out["verdict"] = row.verdict
        return json.dumps(data, indent=2)

    def write(self, folder: Path, stem: str) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        md, js = folder / f"{stem}.md", folder / f"{stem}.json"
        md.write_text(self.markdown())
        js.write_text(self.as_json())
        return [md, js]


def machine() -> dict[str, str]:
    """CPU, cores, memory, OS and the versions that matter, for the README's table heading."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    info = {
        "cpu": cpu,
        "cores": str(cores),
        "memory": memory,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "google-genai": _version("google-genai"),
        "aiohttp": _version("aiohttp"),
    }
    parts = [
        f"{cores} cores ({cpu})",
        memory,
        info["os"],
        f"Python {info['python']}",
        f"SQLite {info['sqlite']}",
    ]
    parts.append(f"google-genai {info['google-genai']}")
    info["summary"] = ", ".join(p for p in parts if p)
    return info


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.2f} MB"
