//! OpenPGP: placeholder until the PGP module lands.
