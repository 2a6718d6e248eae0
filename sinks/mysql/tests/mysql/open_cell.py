"""Opens one aes_gcm cell of SecureForm's MySQL sink, following sinks/mysql/FORMAT.md.

stdin, one per line: key (hex), table, column, row key, value (hex). stdout: the plaintext.
"""
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

key_hex, table, column, row_key, value_hex = sys.stdin.read().split("\n")[:5]
value = bytes.fromhex(value_hex)
if not value or value[0] != 0x01:
    sys.exit("unknown version")
aad = b"\0".join([b"secureform/mysql/v1", table.encode(), column.encode(), row_key.encode()])
sys.stdout.buffer.write(AESGCM(bytes.fromhex(key_hex)).decrypt(value[1:13], value[13:], aad))
