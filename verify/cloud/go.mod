module github.com/ratebill/platform/verify/cloud

go 1.26.8
