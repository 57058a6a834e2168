package presence_test

import (
	"fmt"

	"github.com/psakit/psakit/presence"
)

func ExampleUnmarshal() {
	p, err := presence.Unmarshal([]byte(`<presence from='juliet@capulet.lit/orchard' to='romeo@montague.lit/lane'>
  <show>away</show>
  <status>Available</status>
  <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'>
    <server-unavailable/>
    <description>The capulet.lit server is no longer available</description>
  </state-annotation>
</presence>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.From, p.Show, p.StatusText())
	for _, a := range p.Annotations {
		fmt.Println("annotated by", a.From, "as", a.Condition)
	}
	// Output:
	// juliet@capulet.lit/orchard away Available
	// annotated by montague.lit as server-unavailable
}
