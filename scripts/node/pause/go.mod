module panthera.dev/pause

go 1.22
