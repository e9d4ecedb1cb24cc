module github.com/ratebill/platform/functions/users

go 1.26.8
