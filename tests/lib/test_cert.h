/* test_cert.h - a throwaway self-signed certificate for TLS/DTLS tests
 * (P-256, CN=localhost, valid for an hour), written to /tmp by PID. */
#ifndef STUNKIT_TEST_CERT_H
#define STUNKIT_TEST_CERT_H

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <unistd.h>

static char cert_path[64], key_path[64];

static inline int make_cert(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pk || !x)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, pk, EVP_sha256());
    snprintf(cert_path, sizeof(cert_path), "/tmp/stunkit-dtls-cert-%d.pem", (int)getpid());
    snprintf(key_path, sizeof(key_path), "/tmp/stunkit-dtls-key-%d.pem", (int)getpid());
    FILE *c = fopen(cert_path, "w"), *k = fopen(key_path, "w");
    int ok = c && k && PEM_write_X509(c, x) == 1 && PEM_write_PrivateKey(k, pk, NULL, NULL, 0, NULL, NULL) == 1;
    if (c)
        fclose(c);
    if (k)
        fclose(k);
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

static inline void remove_cert(void)
{
    unlink(cert_path);
    unlink(key_path);
}

#endif
