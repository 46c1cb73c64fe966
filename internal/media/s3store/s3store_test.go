package s3store_test

import (
	"testing"

	"github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/media/mediatest"
)

func TestConformance(t *testing.T) {
	mediatest.Run(t, func(t *testing.T) media.Store { return mediatest.S3(t) })
}
