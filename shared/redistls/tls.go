// Package redistls builds the TLS client configuration for Memorystore for
// Redis (rediss://IP:6378 with in-transit encryption).
//
// Memorystore's server certificate is signed by the instance's own CA (the
// REDIS_CA_CERT bundle) but names the instance only by its IP address in
// the subject's common name, with no subject alternative name
// (envoyproxy/ratelimit#409, redis/go-redis#3297). go-redis sets the TLS
// server name to the host of the URL, and Go's standard verification
// matches an IP only against IP SANs and never falls back to the legacy
// common name, so every handshake would fail with "cannot validate
// certificate for 10.x.y.z because it doesn't contain any IP SANs".
//
// Config therefore verifies the chain itself: the server's certificate
// must chain to a CA of the bundle and be valid for server authentication,
// now. It does not compare a host name: the bundle is the instance's
// private CA, which signs nothing but that instance's server certificates,
// and the address is a private one reached over the VPC.
package redistls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Config returns a TLS client configuration that trusts exactly the CA
// certificates of caPEM (one or more PEM blocks; Memorystore lists the
// current and, during a rotation, the next CA) and requires TLS 1.2 or
// newer. The chain is verified in VerifyConnection, without a host name
// check (see the package documentation).
func Config(caPEM []byte) (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no PEM certificate found in the CA bundle")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Go's own verification would check the host name, which
		// Memorystore's certificate cannot pass; VerifyConnection below
		// does the chain verification instead, on every handshake
		// (resumed sessions included).
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified in VerifyConnection.
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(roots, cs.PeerCertificates)
		},
	}, nil
}

// verifyChain checks that certs (leaf first, as the server sent them)
// chain to one of roots and that the leaf is valid for server
// authentication now. No name is checked.
func verifyChain(roots *x509.CertPool, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("redis TLS: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("redis TLS: verifying the server certificate (CN %q) against REDIS_CA_CERT: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}
