module github.com/ratebill/platform/verify/local

go 1.26.8
