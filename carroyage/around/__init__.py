"""Around a computed geography: quartier vécu and veille active, comparison, validation."""
