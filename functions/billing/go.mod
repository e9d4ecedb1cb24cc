module github.com/ratebill/platform/functions/billing

go 1.26.8
