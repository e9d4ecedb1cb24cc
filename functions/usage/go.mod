module github.com/ratebill/platform/functions/usage

go 1.26.8
