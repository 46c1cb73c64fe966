package follow

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/parley-chat/parley/pkg/store"
)

// Store reads whom a user follows: friends and rooms.
type Store interface {
	Relations(ctx context.Context, user string, l store.RelationList, afterUser string, limit int) ([]store.Listed, error)
	UserRooms(ctx context.Context, user, afterRoom string, limit int) ([]string, error)
}

// RoomSizer reads a room's members when it is small (fanout.Hubs).
type RoomSizer interface {
	// SmallRoomMembers returns the members of room and true if it has at
	// most the small-room limit of them, else false and no members.
	SmallRoomMembers(ctx context.Context, room string) ([]string, bool, error)
}

// A user's contacts are read from their first maxContactRooms rooms, a
// page at a time, on connect.
const (
	maxContactRooms  = 1000
	contactRoomsPage = 500
)

// follows is what a user's presence follows: friends, and the members of
// the user's small rooms (larger rooms show an online count instead).
type follows struct {
	friends []string
	rooms   map[string][]string // small room -> its members
}

// readFollows reads what user follows. It is read once per connection to
// a gateway that has none of the user's yet; new friends and direct rooms
// are added live (Users.befriend), other rooms joined later count from the
// next connection.
func readFollows(ctx context.Context, st Store, sizer RoomSizer, user string) (follows, error) {
	var f follows
	for after := ""; len(f.friends) < maxContactRooms; {
		page, err := st.Relations(ctx, user, store.ListFriends, after, contactRoomsPage)
		if err != nil {
			return f, err
		}
		for _, r := range page {
			f.friends = append(f.friends, r.User)
		}
		if len(page) < contactRoomsPage {
			break
		}
		after = page[len(page)-1].User
	}
	var rooms []string
	for after := ""; len(rooms) < maxContactRooms; {
		page, err := st.UserRooms(ctx, user, after, contactRoomsPage)
		if err != nil {
			return f, err
		}
		rooms = append(rooms, page...)
		if len(page) < contactRoomsPage {
			break
		}
		after = page[len(page)-1]
	}
	members := make([][]string, len(rooms))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for i, room := range rooms {
		eg.Go(func() error {
			ms, small, err := sizer.SmallRoomMembers(ctx, room)
			if small {
				members[i] = ms
			}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return f, err
	}
	f.rooms = make(map[string][]string)
	for i, room := range rooms {
		if members[i] != nil {
			f.rooms[room] = members[i]
		}
	}
	return f, nil
}
