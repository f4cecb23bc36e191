package ingest

import "github.com/auditops/auditops/internal/ingest/ingesttest"

// The helpers shared with internal/apiserver/ingesthttp's tests.
var (
	newTestStore   = ingesttest.NewStore
	newTestStoreAt = ingesttest.NewStoreAt
	webhookBody    = ingesttest.WebhookBody
	eventsBody     = ingesttest.EventsBody
	storedEvents   = ingesttest.StoredEvents
	kubeItem       = ingesttest.KubeItem
	bigObject      = ingesttest.BigObject
	allTime        = ingesttest.AllTime
)

const testBusyTimeout = ingesttest.BusyTimeout
