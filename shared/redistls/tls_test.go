package redistls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// pki is a CA and a server certificate it signed, in PEM.
type pki struct {
	caPEM             []byte
	certPEM, keyPEM   []byte
	caCert            *x509.Certificate
	serverCertificate *x509.Certificate
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// newPKI makes a CA and, signed by it, a server certificate shaped like
// Memorystore's: the IP in the subject's common name only, no subject
// alternative names at all.
func newPKI(t *testing.T, cn string) *pki {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test Memorystore CA", Organization: []string{"ratebill test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey := newKey(t)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// No DNSNames, no IPAddresses: the CN is the only name.
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := x509.ParseCertificate(srvDER)
	if err != nil {
		t.Fatal(err)
	}
	if len(srvCert.IPAddresses)+len(srvCert.DNSNames) != 0 {
		t.Fatal("the test server certificate must have no SANs")
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{
		caPEM:             pemBlock("CERTIFICATE", caDER),
		certPEM:           pemBlock("CERTIFICATE", srvDER),
		keyPEM:            pemBlock("EC PRIVATE KEY", keyDER),
		caCert:            caCert,
		serverCertificate: srvCert,
	}
}

// redisTLS starts a private redis-server that speaks only TLS with the
// given certificate, and returns its address. A missing redis-server
// skips the test with a DID NOT RUN line (fails it under CI).
func redisTLS(t *testing.T, p *pki) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (CI is set: scripts/install-deps.sh installs it)")
		}
		t.Skip("DID NOT RUN: redis-server is not installed (scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": p.caPEM, "server.pem": p.certPEM, "server.key": p.keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--port", "0",
		"--bind", "127.0.0.1",
		"--tls-port", fmt.Sprint(port),
		"--tls-cert-file", filepath.Join(dir, "server.pem"),
		"--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"),
		// Memorystore's SERVER_AUTHENTICATION mode: no client certificates.
		"--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no",
		"--dir", dir,
	)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with TLS not listening on %s after 10s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping dials rediss://addr the way go-redis does for REDIS_URL (ParseURL
// sets the server name to the URL's host), with tc as the TLS config.
func ping(t *testing.T, addr string, tc *tls.Config) error {
	t.Helper()
	opt, err := redis.ParseURL("rediss://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		opt.TLSConfig = tc
	}
	opt.MaxRetries = 0
	opt.DialTimeout = 3 * time.Second
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// TestMemorystoreShapedCertificate runs a real redis-server with TLS and a
// CN-only server certificate (the instance's IP in the CN, no SANs), as
// Memorystore presents one.
func TestMemorystoreShapedCertificate(t *testing.T) {
	p := newPKI(t, "127.0.0.1")
	addr := redisTLS(t, p)

	t.Run("trusted CA connects", func(t *testing.T) {
		tc, err := Config(p.caPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(t, addr, tc); err != nil {
			t.Fatalf("PING over TLS with the instance's CA: %v", err)
		}
	})

	// What the platform did before: RootCAs with go-redis's server name.
	// Go requires an IP SAN, so this fails; if it ever passes, the
	// certificate in this test no longer looks like Memorystore's.
	t.Run("standard verification fails on the CN-only certificate", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(p.caPEM)
		opt, _ := redis.ParseURL("rediss://" + addr + "/0")
		opt.TLSConfig.RootCAs = roots
		err := ping(t, addr, opt.TLSConfig)
		if err == nil {
			t.Fatal("standard verification accepted a certificate without IP SANs; the test certificate is not Memorystore-shaped")
		}
		if !strings.Contains(err.Error(), "Common Name") && !strings.Contains(err.Error(), "SANs") {
			t.Errorf("failed, but not on the missing SAN: %v", err)
		}
	})

	t.Run("certificate of another CA is rejected", func(t *testing.T) {
		other := newPKI(t, "127.0.0.1")
		tc, err := Config(other.caPEM)
		if err != nil {
			t.Fatal(err)
		}
		err = ping(t, addr, tc)
		if err == nil {
			t.Fatal("connected although the server's certificate is signed by a CA outside REDIS_CA_CERT")
		}
		if !strings.Contains(err.Error(), "REDIS_CA_CERT") {
			t.Errorf("error %q does not say the chain failed against REDIS_CA_CERT", err)
		}
	})

	t.Run("bundle with the rotation's next CA first still connects", func(t *testing.T) {
		next := newPKI(t, "127.0.0.1")
		tc, err := Config(append(append([]byte{}, next.caPEM...), p.caPEM...))
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(t, addr, tc); err != nil {
			t.Fatalf("PING with a two-CA bundle: %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	if _, err := Config([]byte("not a certificate")); err == nil {
		t.Error("Config accepted a bundle without a PEM certificate")
	}
	p := newPKI(t, "10.0.0.3")
	tc, err := Config(p.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", tc.MinVersion)
	}
	if tc.VerifyConnection == nil {
		t.Fatal("no VerifyConnection: InsecureSkipVerify alone would trust anything")
	}
	for _, tt := range []struct {
		name    string
		certs   []*x509.Certificate
		wantErr bool
	}{
		{"signed by the CA, CN only", []*x509.Certificate{p.serverCertificate}, false},
		{"no certificate", nil, true},
		{"signed by another CA", []*x509.Certificate{newPKI(t, "10.0.0.3").serverCertificate}, true},
		{"chain with an unknown intermediate", []*x509.Certificate{newPKI(t, "10.0.0.3").serverCertificate, p.caCert}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tc.VerifyConnection(tls.ConnectionState{PeerCertificates: tt.certs})
			if (err != nil) != tt.wantErr {
				t.Errorf("VerifyConnection: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
