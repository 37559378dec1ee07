"""Demo data for the example DAGs: a ``support_tickets`` table of resolved tickets.

On a real account this table is yours and this module is not needed. For the local emulator
it fills the table the examples read::

    python dags_examples/support_tickets_demo.py --conn-id snowflake_default --weeks 4

Tickets are spread over the days before ``--until`` (default: today), so a run of the weekly
retraining DAG for any recent week finds that week's tickets.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta

TOPICS = [
    ("reset my password", "Open Settings > Security, choose Reset password and follow the emailed link."),
    ("change my billing address", "Go to Billing > Details, edit the address and press Save."),
    ("export my data", "Use Account > Export; the archive arrives by email within an hour."),
    ("delete my account", "Write to support from the account's address; deletion completes in 30 days."),
    ("add a team member", "Open Team > Invite, enter their email and pick a role."),
]
PHRASINGS = ["How do I {}?", "I need to {}, how?", "Where can I {}?"]
COLUMNS = "ticket_id INTEGER, question VARCHAR, answer VARCHAR, rating INTEGER, resolved_at TIMESTAMP_NTZ"


def ticket_rows(
    until: date, days: int, per_day: int = 10, mislabelled_days: frozenset[date] = frozenset()
) -> list[tuple[int, str, str, int, datetime]]:
    """Tickets resolved on the ``days`` days before ``until``.

    On ``mislabelled_days`` every ticket outside the hold-out (``ticket_id`` not a multiple of
    10) carries the answer of another topic: a bad week's labels, which a retrained model learns
    and the evaluation must catch.
    """
    rows = []
    for day_index in range(days):
        day = until - timedelta(days=days - day_index)
        for n in range(per_day):
            ticket_id = (day.toordinal() - date(2020, 1, 1).toordinal()) * per_day + n
            topic = ticket_id % len(TOPICS)
            question = PHRASINGS[(ticket_id // len(TOPICS)) % len(PHRASINGS)].format(TOPICS[topic][0])
            answer_topic = (topic + 1) % len(TOPICS) if day in mislabelled_days and ticket_id % 10 else topic
            rating = 2 if ticket_id % 7 == 0 else 5
            resolved_at = datetime(day.year, day.month, day.day, 9) + timedelta(minutes=37 * n)
            rows.append(
                (ticket_id, f"{question} (ticket {ticket_id})", TOPICS[answer_topic][1], rating, resolved_at)
            )
    return rows


def seed_statements(rows: list[tuple[int, str, str, int, datetime]]) -> list[str]:
    """Statements that (re)create ``support_tickets`` with ``rows``."""
    from airflow_cortex.sql.literals import sql_string_literal

    values = ", ".join(
        f"({ticket_id}, {sql_string_literal(question)}, {sql_string_literal(answer)}, {rating}, "
        f"'{resolved_at:%Y-%m-%d %H:%M:%S}')"
        for ticket_id, question, answer, rating, resolved_at in rows
    )
    return [
        f"CREATE OR REPLACE TABLE support_tickets ({COLUMNS})",
        f"INSERT INTO support_tickets VALUES {values}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conn-id", default="snowflake_default")
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--until", type=date.fromisoformat, default=date.today())
    args = parser.parse_args()
    from airflow_cortex.hooks.finetune import CortexFineTuneHook

    rows = ticket_rows(args.until, 7 * args.weeks)
    CortexFineTuneHook(snowflake_conn_id=args.conn_id).run(seed_statements(rows))
    print(f"support_tickets: {len(rows)} tickets resolved before {args.until}")


if __name__ == "__main__":
    main()
