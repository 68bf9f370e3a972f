"""Custom Lava processes. Kept in a folder of their own: Lava's compiler imports every .py file here."""
