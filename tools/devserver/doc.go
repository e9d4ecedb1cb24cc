// Package devserver runs private PostgreSQL and Redis servers from the
// machine's own binaries, for `make run` (data kept under a git-ignored
// folder) and `make test` (throwaway servers in a temporary folder).
//
// The servers are real: StartPostgres runs initdb and postgres, StartRedis
// runs redis-server, each listening on 127.0.0.1 only, each in a process
// group of its own so a terminal's Ctrl-C reaches the caller first and the
// caller decides the order of shutdown. On Linux a server is also killed by
// the kernel when its parent process dies (Pdeathsig), so nothing outlives
// the program that started it.
//
// PostgreSQL refuses to run as root. When the caller is root (as CI is),
// initdb and postgres run as the "postgres" user (created by Debian's
// postgresql package): the data folder is handed to that user and its
// parent folders are made traversable (o+x) where they are not.
//
// EnsureBinaries finds or installs the servers: as root on Debian or Ubuntu
// it runs apt-get; elsewhere it returns an error that carries the exact
// install command.
package devserver
