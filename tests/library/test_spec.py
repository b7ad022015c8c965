"""``kavier.library.spec``: KV bytes per token count the KV heads."""


def test_kv_bytes_per_token_uses_kv_heads(llama3_8b):
    assert llama3_8b.kv_bytes_per_token(2.0) == 2 * 32 * 8 * 128 * 2 == 128 * 1024
