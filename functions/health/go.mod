module github.com/ratebill/platform/functions/health

go 1.26.8
