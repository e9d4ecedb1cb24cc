module github.com/ratebill/platform/tools

go 1.26.8
