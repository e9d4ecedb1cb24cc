module github.com/ratebill/platform/client

go 1.23
