package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/auditops/auditops/internal/bench"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	ds, err := bench.Generate(os.Args[1], n)
	fmt.Println(ds, err)
}
