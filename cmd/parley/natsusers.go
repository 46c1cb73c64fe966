package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/parley-chat/parley/internal/config"
	"github.com/parley-chat/parley/internal/natsauth"
	"golang.org/x/crypto/bcrypt"
)

// runNATSUsers is `parley nats-users`: it writes the authorization block
// of a nats-server configuration with one user per role and its
// permissions (internal/natsauth). Passwords come from the environment
// (PARLEY_NATS_PASSWORD_GATEWAY, …_PROCESSOR, …_ARCHIVER, …_ADMIN); any
// missing one is generated and printed as a comment, to hand to that role
// as --nats-password.
func runNATSUsers(_ context.Context, args []string) error {
	f := config.NewFlags("parley nats-users")
	if err := f.Parse(args); err != nil {
		return err
	}
	passwords := map[natsauth.Role]string{}
	var generated []string
	password := func(name string) string {
		env := config.EnvName("nats-password-" + name)
		if p := os.Getenv(env); p != "" {
			return p
		}
		p := rand.Text()
		generated = append(generated, fmt.Sprintf("# %s=%s", env, p))
		return p
	}
	for _, r := range natsauth.Roles {
		passwords[r] = password(r.Short())
	}
	admin := password("admin")
	block, err := natsauth.ServerConfig(passwords, admin, bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if len(generated) > 0 {
		fmt.Println("# Generated passwords; give each role its own as --nats-password (or PARLEY_NATS_PASSWORD):")
		for _, g := range generated {
			fmt.Println(g)
		}
	}
	fmt.Print(block)
	return nil
}
