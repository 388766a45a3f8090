package main

import (
	"fmt"
	"time"
)

// Order is what GET /json encodes and decodes: nested structs, slices, maps, strings,
// numbers and a time, about 8 KB of JSON.
type Order struct {
	ID        string            `json:"id"`
	CreatedAt time.Time         `json:"created_at"`
	Customer  Customer          `json:"customer"`
	Items     []Item            `json:"items"`
	Shipping  Address           `json:"shipping"`
	Labels    map[string]string `json:"labels"`
	Paid      bool              `json:"paid"`
	Note      string            `json:"note,omitempty"`
}

// Customer is who placed an order.
type Customer struct {
	ID      int64   `json:"id"`
	Name    string  `json:"name"`
	Email   string  `json:"email"`
	Billing Address `json:"billing"`
}

// Address is where an order goes.
type Address struct {
	Lines   []string `json:"lines"`
	City    string   `json:"city"`
	Postal  string   `json:"postal"`
	Country string   `json:"country"`
}

// Item is one line of an order.
type Item struct {
	SKU        string   `json:"sku"`
	Title      string   `json:"title"`
	Quantity   int      `json:"quantity"`
	PriceCents int64    `json:"price_cents"`
	Weight     float64  `json:"weight_kg"`
	Tags       []string `json:"tags"`
}

// Total is the order's price in cents.
func (o *Order) Total() int64 {
	var t int64
	for _, it := range o.Items {
		t += int64(it.Quantity) * it.PriceCents
	}
	return t
}

var sample = newOrder(48)

// newOrder builds the same order of n items every time.
func newOrder(n int) *Order {
	addr := Address{
		Lines:   []string{"Flat 4", "12 Harbour Street"},
		City:    "Portsmouth",
		Postal:  "PO1 2AB",
		Country: "GB",
	}
	o := &Order{
		ID:        "ord_7f3a9c21e4b0",
		CreatedAt: time.Date(2026, 11, 3, 14, 22, 5, 0, time.UTC),
		Customer: Customer{
			ID:      90210,
			Name:    "Ada Q. Example",
			Email:   "ada@example.com",
			Billing: addr,
		},
		Shipping: addr,
		Labels:   map[string]string{"channel": "web", "region": "eu-west", "priority": "standard"},
		Paid:     true,
		Note:     "Leave the parcel with the neighbour at number 14 if nobody answers.",
	}
	tags := []string{"fragile", "gift", "bulk", "sale", "new"}
	for i := 0; i < n; i++ {
		o.Items = append(o.Items, Item{
			SKU:        fmt.Sprintf("SKU-%05d", 1000+i*37),
			Title:      fmt.Sprintf("Item number %d, \"boxed\" & labelled", i),
			Quantity:   1 + i%4,
			PriceCents: int64(199 + i*113%5000),
			Weight:     0.25 + float64(i%7)*0.5,
			Tags:       tags[:1+i%len(tags)],
		})
	}
	return o
}
