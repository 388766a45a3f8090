module livecov.dev/agent

go 1.22
