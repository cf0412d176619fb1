/* libFuzzer target: the JWK parser and serializer. Parses the input as JWK text; on success serializes
 * it (private, and public for RSA/EC), parses each serialization again and checks that a second
 * round trip gives the same text. Owns nothing but this harness; JWK code lives in src/crypto/jwk.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ownkey/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a broken promise with the library's detail message, then aborts (a crash for libFuzzer). */
static void broken(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_jwk: %s: %s\n", what, ok_err_message());
    if (text)
        fprintf(stderr, "fuzz_jwk: serialized text: %s\n", text);
    abort();
}

/* Serializes jwk, parses the text back, serializes that again: the two texts must be equal. */
static void round_trip(const ok_jwk *jwk, int include_private)
{
    char *text = NULL, *again = NULL;
    ok_jwk *back = NULL;
    if (ok_jwk_serialize(jwk, include_private, &text) != OK_OK)
        broken("a parsed JWK does not serialize", NULL);
    if (ok_jwk_parse(text, strlen(text), &back) != OK_OK)
        broken("a serialized JWK does not parse", text);
    if (back->kty != jwk->kty)
        broken("kty changed in a round trip", text);
    if (ok_jwk_serialize(back, include_private, &again) != OK_OK || strcmp(text, again) != 0)
        broken("a second round trip changed the text", text);
    ok_jwk_free(back);
    free(text);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ok_jwk *jwk = NULL;
    if (ok_jwk_parse((const char *)data, size, &jwk) == OK_OK) {
        round_trip(jwk, 1);
        if (jwk->kty == OK_JWK_RSA || jwk->kty == OK_JWK_EC)
            round_trip(jwk, 0);
        ok_jwk_free(jwk);
    } else if (jwk != NULL) {
        abort(); /* a failed parse must not hand anything out */
    }
    ok_err_clear();
    return 0;
}
