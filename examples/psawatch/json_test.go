package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// Every event kind prints the fields the package documentation lists for
// it, and no other.
func TestJSONSchema(t *testing.T) {
	now := time.Date(2026, 12, 1, 21, 0, 0, 123456789, time.UTC)
	juliet := jid.MustParse("juliet@capulet.lit/balcony")
	nurse := jid.MustParse("orchard@muc.montague.lit/Nurse")
	room := jid.MustParse("orchard@muc.montague.lit")
	self := jid.MustParse("orchard@muc.montague.lit/Romeo")
	down := psa.Mark{Condition: psa.ServerUnavailable, By: jid.MustParse("montague.lit"), Since: now,
		Descriptions: []psa.Description{{Text: "capulet.lit is unreachable"}}}
	paused := psa.Mark{Condition: psa.ConnectionPaused, By: jid.MustParse("capulet.lit"), Since: now}
	ours := psa.Mark{Condition: psa.LocalDisconnected, By: jid.MustParse("romeo@montague.lit"), Since: now}
	muc := psa.Mark{Condition: psa.ServerUnavailable, By: jid.MustParse("muc.montague.lit"), Since: now}
	inferred := psa.InferredMark(jid.MustParse("capulet.lit"), now)
	inferredMUC := psa.InferredMark(jid.MustParse("muc.montague.lit"), now)
	away := presence.State{Show: presence.ShowAway, Status: []presence.Text{{Value: "on the balcony"}}}
	res := func(marks ...psa.Mark) roster.Resource {
		return roster.Resource{JID: juliet, State: away, Marks: marks}
	}
	occ := func(marks ...psa.Mark) mucwatch.Occupant {
		return mucwatch.Occupant{JID: nurse, Nick: "Nurse", State: away, Marks: marks}
	}
	const ts = `{"time":"2026-12-01T21:00:00.123456789Z",`
	for _, tc := range []struct {
		r    record
		want string
	}{
		{rosterRecord(now, roster.Event{Kind: roster.EventAvailable, JID: juliet, Resource: res()}),
			`"event":"available","jid":"juliet@capulet.lit/balcony","fresh":true,"show":"away","status":"on the balcony"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventUpdated, JID: juliet, Resource: res(down)}),
			`"event":"updated","jid":"juliet@capulet.lit/balcony","fresh":false,"condition":"server-unavailable","by":"montague.lit","description":"capulet.lit is unreachable","show":"away","status":"on the balcony"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventStale, JID: juliet, Resource: res(paused, down), Mark: down}),
			`"event":"stale","jid":"juliet@capulet.lit/balcony","fresh":false,"condition":"server-unavailable","by":"montague.lit","description":"capulet.lit is unreachable","show":"away","status":"on the balcony"}`},
		// The restored mark is what was cleared; the description is not the state.
		{rosterRecord(now, roster.Event{Kind: roster.EventRestored, JID: juliet, Resource: res(), Mark: down}),
			`"event":"restored","jid":"juliet@capulet.lit/balcony","fresh":true,"cleared":{"condition":"server-unavailable","by":"montague.lit","description":"capulet.lit is unreachable"},"show":"away","status":"on the balcony"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventRestored, JID: juliet, Resource: res(paused), Mark: down}),
			`"event":"restored","jid":"juliet@capulet.lit/balcony","fresh":false,"condition":"connection-paused","by":"capulet.lit","cleared":{"condition":"server-unavailable","by":"montague.lit","description":"capulet.lit is unreachable"},"show":"away","status":"on the balcony"}`},
		// psakit's own mark says so, set and cleared, with a server's beside it.
		{rosterRecord(now, roster.Event{Kind: roster.EventStale, JID: juliet, Resource: res(down, inferred), Mark: inferred}),
			`"event":"stale","jid":"juliet@capulet.lit/balcony","fresh":false,"condition":"server-unavailable","by":"capulet.lit/psakit-inferred","inferred":true,"show":"away","status":"on the balcony"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventRestored, JID: juliet, Resource: res(down), Mark: inferred}),
			`"event":"restored","jid":"juliet@capulet.lit/balcony","fresh":false,"condition":"server-unavailable","by":"montague.lit","description":"capulet.lit is unreachable","cleared":{"condition":"server-unavailable","by":"capulet.lit/psakit-inferred","inferred":true},"show":"away","status":"on the balcony"}`},
		// Swept after a reconnect: gone, neither fresh nor stale.
		{rosterRecord(now, roster.Event{Kind: roster.EventUnavailable, JID: juliet, Resource: res(ours)}),
			`"event":"unavailable","jid":"juliet@capulet.lit/balcony","status":"on the balcony"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventItemAdded, JID: juliet.Bare(), Item: roster.Item{JID: juliet.Bare(), Name: "Juliet", Subscription: "both"}}),
			`"event":"item-added","jid":"juliet@capulet.lit","subscription":"both","name":"Juliet"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventItemUpdated, JID: juliet.Bare(), Item: roster.Item{JID: juliet.Bare(), Subscription: "to"}}),
			`"event":"item-updated","jid":"juliet@capulet.lit","subscription":"to"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventItemRemoved, JID: juliet.Bare(), Item: roster.Item{JID: juliet.Bare(), Subscription: "remove"}}),
			`"event":"item-removed","jid":"juliet@capulet.lit","subscription":"remove"}`},
		{rosterRecord(now, roster.Event{Kind: roster.EventRejected, JID: juliet, Err: psa.ErrUntrusted}),
			`"event":"rejected","jid":"juliet@capulet.lit/balcony","error":"` + psa.ErrUntrusted.Error() + `"}`},

		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventOccupantAvailable, Room: room, JID: nurse, Occupant: occ()}, false),
			`"event":"occupant-available","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","fresh":true,"show":"away","status":"on the balcony"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventOccupantUpdated, Room: room, JID: nurse, Occupant: occ(muc)}, false),
			`"event":"occupant-updated","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","fresh":false,"condition":"server-unavailable","by":"muc.montague.lit","show":"away","status":"on the balcony"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventOccupantStale, Room: room, JID: nurse, Occupant: occ(muc), Mark: muc}, false),
			`"event":"occupant-stale","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","fresh":false,"condition":"server-unavailable","by":"muc.montague.lit","show":"away","status":"on the balcony"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventOccupantRestored, Room: room, JID: nurse, Occupant: occ(), Mark: muc}, false),
			`"event":"occupant-restored","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","fresh":true,"cleared":{"condition":"server-unavailable","by":"muc.montague.lit"},"show":"away","status":"on the balcony"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventOccupantUnavailable, Room: room, JID: nurse, Occupant: occ(muc),
			Removal: mucwatch.Removal{Codes: []int{307}, Actor: "Capulet", Reason: "noise"}}, false),
			`"event":"occupant-unavailable","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","status":"on the balcony","codes":[307],"actor":"Capulet","reason":"noise"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventNickChanged, Room: room, JID: nurse, OldNick: "Angelica", Occupant: occ()}, false),
			`"event":"nick-changed","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","old_nick":"Angelica"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventJoining, Room: room}, false),
			`"event":"joining","room":"orchard@muc.montague.lit"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomJoined, Room: room, JID: self}, false),
			`"event":"room-joined","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Romeo"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomJoined, Room: room, JID: self}, true),
			`"event":"rejoined","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Romeo"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomStale, Room: room, Mark: ours}, false),
			`"event":"room-stale","room":"orchard@muc.montague.lit","fresh":false,"condition":"local-disconnected","by":"romeo@montague.lit"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomStale, Room: room, Mark: inferredMUC}, false),
			`"event":"room-stale","room":"orchard@muc.montague.lit","fresh":false,"condition":"server-unavailable","by":"muc.montague.lit/psakit-inferred","inferred":true}`},
		// A self-ping said we are no longer in the room: no mark.
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomStale, Room: room}, false),
			`"event":"room-stale","room":"orchard@muc.montague.lit","fresh":false}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomRestored, Room: room, Mark: ours}, false),
			`"event":"room-restored","room":"orchard@muc.montague.lit","fresh":true,"cleared":{"condition":"local-disconnected","by":"romeo@montague.lit"}}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomDropped, Room: room, JID: self, Removal: mucwatch.Removal{Codes: []int{333}}}, false),
			`"event":"room-dropped","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Romeo","codes":[333]}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomDestroyed, Room: room, JID: self,
			Removal: mucwatch.Removal{Reason: "moved", Venue: jid.MustParse("garden@muc.montague.lit")}}, false),
			`"event":"room-destroyed","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Romeo","reason":"moved","venue":"garden@muc.montague.lit"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRoomJoinFailed, Room: room, JID: self, Err: errors.New("conflict")}, false),
			`"event":"room-join-failed","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Romeo","error":"conflict"}`},
		{roomRecord(now, mucwatch.Event{Kind: mucwatch.EventRejected, Room: room, JID: nurse, Err: psa.ErrUntrusted}, false),
			`"event":"rejected","room":"orchard@muc.montague.lit","jid":"orchard@muc.montague.lit/Nurse","error":"` + psa.ErrUntrusted.Error() + `"}`},

		{actionRecord(now, client.RoomAction{Kind: client.ActionSelfPing, Room: room, Reason: "silence", Verdict: mucwatch.VerdictJoined}),
			`"event":"self-ping","room":"orchard@muc.montague.lit","reason":"silence","verdict":"` + mucwatch.VerdictJoined.String() + `"}`},
		{actionRecord(now, client.RoomAction{Kind: client.ActionRejoin, Room: room, Reason: "removed", Attempt: 2}),
			`"event":"rejoin","room":"orchard@muc.montague.lit","reason":"removed","attempt":2}`},

		{connRecord(now, client.ConnEvent{Kind: client.ConnConnected, JID: jid.MustParse("romeo@montague.lit/watch")}),
			`"event":"connected","jid":"romeo@montague.lit/watch"}`},
		{connRecord(now, client.ConnEvent{Kind: client.ConnDisconnected, Err: errors.New("EOF")}),
			`"event":"disconnected","error":"EOF"}`},
		{connRecord(now, client.ConnEvent{Kind: client.ConnReconnecting, Attempt: 3, Delay: 1500 * time.Millisecond, Err: errors.New("connection refused")}),
			`"event":"reconnecting","attempt":3,"delay":"1.5s","error":"connection refused"}`},
		{connRecord(now, client.ConnEvent{Kind: client.ConnResynced}),
			`"event":"resynced","swept":0}`},
		{connRecord(now, client.ConnEvent{Kind: client.ConnResumed, JID: jid.MustParse("romeo@montague.lit/watch")}),
			`"event":"resumed","jid":"romeo@montague.lit/watch"}`},
		{connRecord(now, client.ConnEvent{Kind: client.ConnClosed}),
			`"event":"closed"}`},
		{verifyRecord(now, client.VerifyResult{JID: juliet, Outcome: client.VerifyGone, Err: errors.New("item-not-found")}),
			`"event":"verify-gone","jid":"juliet@capulet.lit/balcony","error":"item-not-found"}`},
		{overflowRecord(now, 7),
			`"event":"overflow","dropped":7}`},
	} {
		var b bytes.Buffer
		newJSONOutput(&b).print(tc.r)
		if got, want := b.String(), ts+tc.want+"\n"; got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
