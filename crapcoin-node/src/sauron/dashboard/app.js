// Sauron dashboard script (being written).
