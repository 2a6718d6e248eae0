//! S/MIME (RFC 8551) enveloped data: placeholder until the email sink lands.
