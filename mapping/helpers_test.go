package mapping

import "os"

func readFileOK(name string) ([]byte, error) { return os.ReadFile(name) }
