"""Print the README's clause table from auditor/checks/clauses.toml (the README's copy must equal it:
tests/test_clause_data.py). Usage: .venv/bin/python scripts/clause_table.py"""

from auditor.reports.clause_help import markdown_table

if __name__ == "__main__":
    print(markdown_table(), end="")
