"""The cluster bus's commands (all ``TKV.*``), in their own table (helper
"bus" owns the package and its table; this minimal file only makes
``repl`` importable until that lands)."""
