module github.com/ratebill/platform/examples/forecast

go 1.26.8
