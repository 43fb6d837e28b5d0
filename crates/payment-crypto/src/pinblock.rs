//! ISO 9564-1 PIN blocks, formats 0, 1, 3 and 4, and PIN translation.
