"""History storage: tables, exact types, migrations, the poll writer and the queries."""
