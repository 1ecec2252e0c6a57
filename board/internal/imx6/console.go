//go:build tamago && arm

package imx6

import (
	"io"
	"time"

	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
	"github.com/usbarmory/tamago/soc/nxp/uart"
)

// consoleInput reads a UART as a blocking io.Reader. TamaGo's UART.Read returns
// at once with what the FIFO holds, often nothing; a bufio.Scanner gives up after
// a hundred empty reads, so this polls instead, every few milliseconds (a person
// typing, or a test sending a command, does not notice).
type consoleInput struct{ u *uart.UART }

func (c consoleInput) Read(b []byte) (int, error) {
	for {
		if n, _ := c.u.Read(b); n > 0 {
			return n, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ConsoleInput returns UART1 (index 1) or UART2 as the console's input.
func ConsoleInput(index int) io.Reader {
	if index == 2 {
		return consoleInput{imx6ul.UART2}
	}
	return consoleInput{imx6ul.UART1}
}
