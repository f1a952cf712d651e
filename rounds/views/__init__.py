"""The site views of rounds (member and secretary pages), one module per feature: the app's site
views outgrew one module. Each module is named after the feature it serves, like the module of
rounds/ that does the work (rounds.calendar, rounds.ledger, rounds.reminders)."""
