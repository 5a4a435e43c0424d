"""The review queue as terminal text (``dlgrade review OUT``)."""
from __future__ import annotations

from dlgrade.graders.review import counts
from dlgrade.graders.class_files import fmt_points

WHY_CHARS = 90


def render_queue(items, out_dir, shown=None) -> str:
    """A header line with the counts of ``items``, then one line per item of ``shown``
    (default: all of them; open ones first)."""
    c = counts(items)
    items = items if shown is None else shown
    head = (f"review queue of {out_dir}: {c['open']} open, {c['accepted']} accepted, {c['rejected']} rejected, "
            f"{c['overridden']} overridden" + (f", {c['changed']} changed since their override" if c["changed"] else ""))
    if not items:
        return head + "\nnothing to show" if shown is not None else head + "\nnothing needs a person"
    rows = [("STATE", "KIND", "STUDENT", "EXERCISE", "SCORE", "ACCEPT GIVES", "WHAT")]
    for i in items:
        score = i.override.points if i.override is not None else i.automatic_score
        why = " ".join(i.why.split())
        if len(why) > WHY_CHARS:
            why = why[:WHY_CHARS - 1] + "…"
        state = i.state + (" (submission changed)" if i.changed else "")
        who = i.student + (f" ({i.name})" if i.name else "")
        rows.append((state, i.kind, who, i.exercise, f"{fmt_points(score)}/{fmt_points(i.max_score)}",
                     "--points" if i.proposed is None else fmt_points(i.proposed), why))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]) - 1)]
    lines = [head]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    return "\n".join(line.rstrip() for line in lines)


__all__ = ["render_queue"]
