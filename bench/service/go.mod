module livecovbench/service

go 1.22

require github.com/yuin/goldmark v1.8.5
